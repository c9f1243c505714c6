"""The render side's cache primitive (article/cache/__init__.py) and the figure cache's validity check."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from article import cache
from article.figures import figure_cache


def test_key_parts_are_length_prefixed_and_entries_live_under_render(tmp_path):
    assert cache.key(["ab", "c"]) != cache.key(["a", "bc"])
    assert cache.key(["x", b"x"]) == cache.key([b"x", "x"])
    path = cache.entry(tmp_path, "bib", ["a"])
    assert path.parent == tmp_path / "render" and path.name.startswith("bib-") and path.suffix == ".json"


def test_miss_compute_store_then_hit_and_a_corrupt_entry_is_a_miss(tmp_path):
    path = cache.entry(tmp_path, "thing", ["k"])
    calls = []

    def compute():
        calls.append(1)
        return {"v": len(calls)}

    def decode(data: bytes) -> dict:
        value = json.loads(data)
        if not isinstance(value, dict):
            raise ValueError("wrong shape")
        return value

    encode = lambda v: json.dumps(v).encode()  # noqa: E731
    assert cache.cached(path, decode, compute, encode) == {"v": 1}
    assert cache.cached(path, decode, compute, encode) == {"v": 1} and len(calls) == 1  # a hit
    for damage in (b"{trunc", b"[1, 2]", b"\xff\xfe"):
        path.write_bytes(damage)
        assert cache.load(path, decode) is None
    assert cache.cached(path, decode, compute, encode) == {"v": 2}  # recomputed and rewritten
    assert cache.load(path, decode) == {"v": 2}
    raw = bytearray(path.read_bytes())
    raw[-2] ^= 1  # one bit of the value flipped: still JSON of the right shape ({"v": 3}), but not what was stored
    path.write_bytes(bytes(raw))
    assert cache.load(path, decode) is None
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # atomic: no temp file left


def test_no_cache_folder_means_no_caching(tmp_path):
    assert cache.cached(None, bytes, lambda: b"fresh", bytes) == b"fresh"
    assert not (tmp_path / "render").exists()


def test_figure_entry_checks_reads_against_verified_digests_without_hashing_again(tmp_path):
    data = tmp_path / "analysis" / "m" / "w.json"
    data.parent.mkdir(parents=True)
    data.write_text("[1]")
    digest = hashlib.sha256(b"[1]").hexdigest()
    reads = {"analysis/m/w.json": digest}
    assert figure_cache.still_valid(reads, tmp_path, {})  # hashed from disk
    data.write_text("[2]")
    assert not figure_cache.still_valid(reads, tmp_path, {})
    assert figure_cache.still_valid(reads, tmp_path, {"analysis/m/w.json": digest})  # trusted, not hashed
    assert not figure_cache.still_valid(reads, tmp_path, {"analysis/m/w.json": "0" * 64})


def test_manifest_digests_name_files_relative_to_the_cache(tmp_path):
    manifest = tmp_path / "analysis" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"files": [{"path": "m/w.json", "sha256": "ab"},
                                              {"path": "../featureviz/f.png", "sha256": "cd"}, {"path": 5}]}))
    digests = figure_cache.manifest_digests(tmp_path)
    assert digests["analysis/m/w.json"] == "ab" and digests["featureviz/f.png"] == "cd"
    assert digests["analysis/manifest.json"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    manifest.write_text("{broken")
    assert figure_cache.manifest_digests(tmp_path) == {}


def test_figure_cache_key_covers_the_helper_modules_a_kind_uses():
    from analysis.core.codekey import closure
    from article.figures import registry

    registry.discover()
    expanded, libraries = closure([registry.FIGURES["expanded_explorer"].__module__, figure_cache.__name__])
    assert {"article.figures.expanded", "article.figures.cells", "article.figures.context",
            "article.figures.analysis_data", "article.figures.registry", "article.figures.figrender",
            "article.structure.explorer_links", "article.structure.theme"} <= set(expanded)
    assert "article.figures.sample" not in expanded and "article.output.writer" not in expanded
    assert {"altair", "vl_convert", "PIL"} <= libraries
    assert "article.structure.explorer_links" in closure([registry.FIGURES["nmf_explorer"].__module__])[0]
    assert figure_cache.figure_code("expanded_explorer") != figure_cache.figure_code("nmf_explorer")


def test_unchanged_site_files_are_linked_from_the_previous_site_which_stays_as_it_was(tmp_path):
    import os

    from article.output.writer import write

    previous, new = tmp_path / "site", tmp_path / ".site-tmp"
    (previous / "a").mkdir(parents=True)
    (previous / "a" / "same.json").write_bytes(b"[1, 2]")
    (previous / "a" / "edited.html").write_bytes(b"<p>old</p>")
    (previous / "a" / "sized.txt").write_bytes(b"abc")
    os.symlink(previous / "a" / "same.json", previous / "a" / "link.json")
    write(new, "a/same.json", "[1, 2]", previous)
    write(new, "a/edited.html", b"<p>new</p>", previous)
    write(new, "a/sized.txt", b"abd", previous)  # same size, other bytes
    write(new, "a/link.json", b"[1, 2]", previous)  # never through a symlink
    write(new, "b/fresh.txt", b"x", previous)
    assert os.path.samefile(new / "a" / "same.json", previous / "a" / "same.json")
    for name in ("edited.html", "sized.txt", "link.json"):
        assert not os.path.samefile(new / "a" / name, previous / "a" / name)
    assert (new / "a" / "edited.html").read_bytes() == b"<p>new</p>" and (new / "a" / "sized.txt").read_bytes() == b"abd"
    assert (previous / "a" / "edited.html").read_bytes() == b"<p>old</p>"  # the previous site is only read
    assert (previous / "a" / "sized.txt").read_bytes() == b"abc" and (new / "b" / "fresh.txt").read_bytes() == b"x"


def test_a_warm_process_reuses_compiled_templates_until_a_template_changes(tmp_path):
    import shutil

    from article.output.writer import template_env

    root = tmp_path / "proj"
    shutil.copytree(Path(__file__).resolve().parent.parent / "templates", root / "templates",
                    ignore=shutil.ignore_patterns("assets"))
    env = template_env(root)
    assert template_env(root) is env  # nothing changed: the compiled templates are kept
    page = root / "templates" / "404.html"
    page.write_text(page.read_text(encoding="utf-8").replace("</h1>", " (edited)</h1>", 1), encoding="utf-8")
    edited = template_env(root)
    assert edited is not env and template_env(root) is edited
    (root / "templates" / "partial.html").write_text("{{ 1 }}", encoding="utf-8")  # a new template counts too
    assert template_env(root) is not edited


@pytest.mark.slow
def test_an_unchanged_article_is_not_rendered_again(tmp_path, monkeypatch):
    """The rendered article is a render-cache entry keyed by its folder's files, the config and the code: a second
    build renders nothing and writes the same bytes; editing the article or its bibliography renders it again."""
    from article import pipeline
    from article.output.sitedir import tree_digest
    from article.pipeline import build_site
    from test_render_helpers import sample_root

    root, cache = sample_root(tmp_path), tmp_path / "cache"
    build_site(root, tmp_path / "s1", cache_dir=cache, progress=False)
    calls = []
    real = pipeline.render_fresh
    monkeypatch.setattr(pipeline, "render_fresh", lambda a, *rest: calls.append(a.slug) or real(a, *rest))
    report = build_site(root, tmp_path / "s2", cache_dir=cache, progress=False)
    assert calls == [] and report.figures == report.cache_hits == 3
    assert tree_digest(tmp_path / "s1") == tree_digest(tmp_path / "s2")
    assert len(list((cache / "render").glob("article-sample-*"))) == 1

    files_entry, = (cache / "render").glob("files-sample-*")  # the figure files, stored apart from the record
    stored = files_entry.stat().st_mtime_ns, files_entry.stat().st_ino
    index = root / "content" / "sample" / "index.md"
    index.write_text(index.read_text(encoding="utf-8") + "\nA sentence added by the test.\n", encoding="utf-8")
    build_site(root, tmp_path / "s3", cache_dir=cache, progress=False)
    assert calls == ["sample"]
    assert (files_entry.stat().st_mtime_ns, files_entry.stat().st_ino) == stored  # a prose edit: not written again
    raw = bytearray(files_entry.read_bytes())
    raw[-40] ^= 1
    files_entry.write_bytes(bytes(raw))  # damaged files: a miss, rendered again with every file, entry rewritten
    build_site(root, tmp_path / "s3b", cache_dir=cache, progress=False)
    assert calls == ["sample", "sample"] and tree_digest(tmp_path / "s3") == tree_digest(tmp_path / "s3b")
    build_site(root, tmp_path / "s3b2", cache_dir=cache, progress=False)
    assert calls == ["sample", "sample"]  # the rewritten entry is a hit
    files_entry.unlink()  # the record without its files: the same
    build_site(root, tmp_path / "s3c", cache_dir=cache, progress=False)
    build_site(root, tmp_path / "s3d", cache_dir=cache, progress=False)  # and then a hit again
    assert calls == ["sample"] * 3 and tree_digest(tmp_path / "s3") == tree_digest(tmp_path / "s3d")
    calls[:] = ["sample"]
    assert "A sentence added by the test." in (tmp_path / "s3" / "sample" / "index.html").read_text(encoding="utf-8")
    bib = root / "content" / "sample" / "refs.bib"
    bib.write_text(bib.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    build_site(root, tmp_path / "s4", cache_dir=cache, progress=False)
    assert calls == ["sample", "sample"]
    assert len(list((cache / "render").glob("article-sample-*"))) == 1  # one live entry per article
    build_site(root, tmp_path / "s5", cache_dir=cache, progress=False, debug=True)  # --debug: no cache
    assert calls == ["sample"] * 3
    assert tree_digest(tmp_path / "s4") == tree_digest(tmp_path / "s5")


def test_an_article_is_rendered_again_when_an_analysis_file_it_read_changed(tmp_path, monkeypatch):
    import hashlib

    from article import pipeline
    from article.pipeline import build_site
    from test_render_helpers import sample_root

    root, cache = sample_root(tmp_path), tmp_path / "cache"
    data = cache / "analysis" / "x.json"
    data.parent.mkdir(parents=True)
    data.write_bytes(b"1")
    calls, real = [], pipeline.render_fresh

    def render(a, *rest):  # as if a data hook had read analysis/x.json
        calls.append(a.slug)
        return {**real(a, *rest), "analysis/x.json": hashlib.sha256(b"1").hexdigest()}

    monkeypatch.setattr(pipeline, "render_fresh", render)
    for name in ("s1", "s2"):
        build_site(root, tmp_path / name, cache_dir=cache, progress=False)
    assert calls == ["sample"]
    data.write_bytes(b"2")
    build_site(root, tmp_path / "s3", cache_dir=cache, progress=False)
    assert calls == ["sample", "sample"]


def test_converted_formulas_come_from_the_cache_without_importing_latex2mathml(tmp_path):
    """A fresh interpreter with the formulas in the render cache converts nothing (no worker process is started to
    import latex2mathml) and returns the same MathML; a new formula is converted (in the worker: never in the build
    itself, which does not import latex2mathml at all) and kept."""
    import subprocess
    import sys

    script = (
        "import sys; from pathlib import Path; from article.markup import mathml; from analysis.core import deadline\n"
        "started, start = [], deadline.Worker._start\n"
        "deadline.Worker._start = lambda self: (started.append(1), start(self))[1]\n"
        "mathml.use_cache(Path(sys.argv[1]))\n"
        "out = [mathml.tex_to_mathml(t, d) for t, d in [('W^+ = \\\\max(W, 0)', False), ('\\\\sum_i x_i', True)]"
        " + [(a, False) for a in sys.argv[2:]]]\n"
        "mathml.save()\n"
        "assert 'latex2mathml' not in sys.modules\n"
        "print(repr(out)); print(bool(started))\n")
    repo = Path(__file__).resolve().parents[1]

    def run(*args: str) -> list[str]:
        proc = subprocess.run([sys.executable, "-c", script, str(tmp_path), *args], cwd=repo, capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.splitlines()

    first = run()
    assert first[1] == "True" and "<math" in first[0]
    second = run()
    assert second == [first[0], "False"]
    third = run("x^2")
    assert third[1] == "True" and "<msup>" in third[0]
    assert run("x^2")[1] == "False"
    assert len(list((tmp_path / "render").glob("mathml-*"))) == 1


def test_a_prose_edit_links_the_articles_folder_from_the_previous_site_without_reading_its_files(tmp_path,
                                                                                                 monkeypatch):
    """An article's files are known by digest (figure and article cache records): when they are the files its folder
    in the previous site was built from, that folder is hard-linked and no file is read; a folder that is not what
    was recorded (a file edited to another size inside site/), or a damaged figure-files entry, is written anew with
    the same bytes as a build without any cache."""
    import os

    from article.cache import fileset
    from article.output.sitedir import tree_digest
    from article.pipeline import build_site
    from test_render_helpers import sample_root

    root, cache, site = sample_root(tmp_path), tmp_path / "cache", tmp_path / "site"
    build_site(root, site, cache_dir=cache, progress=False)
    loads = []
    real = fileset.FileSet.load
    monkeypatch.setattr(fileset.FileSet, "load", lambda self: loads.append(1) or real(self))
    index = root / "content" / "sample" / "index.md"

    def edit_and_build(n: int) -> None:
        index.write_text(index.read_text(encoding="utf-8") + f"\nProse edit {n}.\n", encoding="utf-8")
        build_site(root, site, cache_dir=cache, progress=False)

    data = sorted(p for p in (site / "sample").rglob("*") if p.is_file() and p.name != "index.html")
    assert any(p.parent.name == "data" for p in data)
    kept = {p: os.stat(p).st_ino for p in data}
    edit_and_build(1)
    assert loads == [] and "Prose edit 1." in (site / "sample" / "index.html").read_text(encoding="utf-8")
    assert {p: os.stat(p).st_ino for p in data} == kept  # the same files, hard-linked into the new site

    victim = next(p for p in data if p.suffix == ".json")
    victim.unlink()
    victim.write_bytes(b"{}\n")  # edited by hand inside site/: the listing differs, so the folder is written anew
    edit_and_build(2)
    assert loads and victim.read_bytes() != b"{}\n"

    for entry in (cache / "render").glob("figfiles-*"):
        raw = bytearray(entry.read_bytes())
        raw[-40] ^= 1
        entry.write_bytes(bytes(raw))  # damaged: the figures are made again and their entries written again
    for entry in (cache / "render").glob("files-sample-*"):
        entry.unlink()
    import shutil
    shutil.rmtree(site / "sample" / "data")  # nothing to link from either
    edit_and_build(3)
    build_site(root, tmp_path / "plain", cache_dir=cache, progress=False, debug=True)  # no cache at all
    assert tree_digest(site / "sample") == tree_digest(tmp_path / "plain" / "sample")
    from article import cache as render_cache
    assert all(render_cache.load(e, render_cache.unpack) for e in (cache / "render").glob("figfiles-*"))


def test_pages_whose_inputs_are_unchanged_are_linked_and_their_templates_not_compiled(tmp_path, monkeypatch):
    """A prose edit renders that article's page only: the index, 404, feed and sitemap are given the articles' front
    matter (not their bodies) and are hard-linked from the previous site. A title edit renders them again, and so does
    an edited template; a page edited by hand inside site/ (another size) is rendered again."""
    import os

    from article.output import writer
    from article.output.sitedir import tree_digest
    from article.pipeline import build_site
    from test_render_helpers import sample_root

    import shutil

    from test_render_helpers import REPO

    root, cache, site = sample_root(tmp_path), tmp_path / "cache", tmp_path / "site"
    shutil.copytree(REPO / "templates", root / "templates")
    build_site(root, site, cache_dir=cache, progress=False)
    rendered = []
    real = writer.render_template
    monkeypatch.setattr(writer, "render_template", lambda env, name, **ctx: rendered.append(name) or
                        real(env, name, **ctx))
    index = root / "content" / "sample" / "index.md"
    shared = ["index.html", "404.html", "sitemap.xml", "feed.xml"]
    inodes = {rel: os.stat(site / rel).st_ino for rel in shared}
    index.write_text(index.read_text(encoding="utf-8") + "\nOne more sentence.\n", encoding="utf-8")
    build_site(root, site, cache_dir=cache, progress=False)
    assert rendered == ["article.html"]
    assert {rel: os.stat(site / rel).st_ino for rel in shared} == inodes

    index.write_text(index.read_text(encoding="utf-8").replace("title: ", "title: Retitled ", 1), encoding="utf-8")
    rendered.clear()
    build_site(root, site, cache_dir=cache, progress=False)
    assert sorted(rendered) == sorted(["article.html", "index.html", "sitemap.xml", "feed.xml"])  # 404: no titles
    assert "Retitled" in (site / "index.html").read_text(encoding="utf-8")
    assert "Retitled" in (site / "feed.xml").read_text(encoding="utf-8")

    (site / "404.html").unlink()
    (site / "404.html").write_text("edited by hand", encoding="utf-8")
    page = root / "templates" / "base.html"
    rendered.clear()
    build_site(root, site, cache_dir=cache, progress=False)
    assert rendered == ["404.html"] and "edited by hand" not in (site / "404.html").read_text(encoding="utf-8")
    page.write_text(page.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    rendered.clear()
    build_site(root, site, cache_dir=cache, progress=False)
    assert sorted(rendered) == sorted(["article.html", *shared])
    build_site(root, tmp_path / "plain", cache_dir=cache, progress=False, debug=True)
    assert tree_digest(site) == tree_digest(tmp_path / "plain")


# ---------------------------------------------------------------- planted entries, hand edits (review of the reuse)

def _planted_then_built(tmp_path, plant) -> tuple:
    """Build the sample, let ``plant(cache)`` change the render cache, build into a new site folder and without any
    cache: (the new site, the cache-free one)."""
    from article.pipeline import build_site
    from test_render_helpers import sample_root

    root, cache = sample_root(tmp_path), tmp_path / "cache"
    build_site(root, tmp_path / "out" / "site", cache_dir=cache, progress=False)
    plant(cache)
    build_site(root, tmp_path / "out" / "site2", cache_dir=cache, progress=False)
    build_site(root, tmp_path / "plain", cache_dir=cache, progress=False, debug=True)
    return tmp_path / "out" / "site2", tmp_path / "plain"


def test_planted_file_bytes_are_a_miss_not_a_published_file(tmp_path):
    """Well-formed figure-files and article-files entries whose bytes are not their recorded digests: the files are
    made again, and the site is the one a build without cache makes."""
    from article.output.sitedir import tree_digest

    def plant(folder):
        for pattern in ("figfiles-*", "files-sample-*"):
            for e in (folder / "render").glob(pattern):
                files = cache.load(e, cache.unpack)
                cache.store(e, cache.pack({k: v.replace(b"0", b"9") for k, v in files.items()}))

    new, plain = _planted_then_built(tmp_path, plant)
    assert tree_digest(new / "sample") == tree_digest(plain / "sample")


def test_a_planted_file_name_cannot_write_outside_the_site(tmp_path):
    """A figure record naming '../../../ESCAPED.txt' (with a files entry that holds it) is a miss: nothing is
    written outside the site, and the site is the cache-free one."""
    import hashlib
    import json

    from article.output.sitedir import tree_digest

    def plant(folder):
        for e in (folder / "render").glob("figure-*.zip"):
            members = cache.load(e, cache.unpack)
            named = json.loads(members["files.json"])
            evil = {"../../../ESCAPED.txt": b"written from a planted cache entry\n"}
            files = cache.load(figure_cache._files_entry(folder, named), cache.unpack)
            named.update({k: hashlib.sha256(v).hexdigest() for k, v in evil.items()})
            cache.store(figure_cache._files_entry(folder, named), cache.pack({**files, **evil}))
            members["files.json"] = json.dumps(named, sort_keys=True).encode()
            cache.store(e, cache.pack(members))
        for e in (folder / "render").glob("article-sample-*"):
            e.unlink()

    new, plain = _planted_then_built(tmp_path, plant)
    assert not list(tmp_path.rglob("ESCAPED.txt"))
    assert tree_digest(new) == tree_digest(plain)
    from article.output.writer import write
    from article.structure.errors import BuildError

    with pytest.raises(BuildError):
        write(tmp_path / "out" / "site2", "../x.txt", b"no")  # the last line of defence


def test_a_hand_edit_inside_the_site_of_the_same_size_does_not_survive_a_rebuild(tmp_path):
    """Pages and article folders are reused by their recorded stamp (size, inode, mtime): an edit in place of the same
    size changes the mtime, so the page is rendered and the folder written again."""
    import os

    from article.pipeline import build_site

    from article.output.sitedir import tree_digest
    from test_render_helpers import sample_root

    root, cache, site = sample_root(tmp_path), tmp_path / "cache", tmp_path / "site"
    build_site(root, site, cache_dir=cache, progress=False)
    page = site / "index.html"
    page.write_text(page.read_text(encoding="utf-8").replace("Sample Site", "HACKED Site", 1), encoding="utf-8")
    data = sorted(p for p in (site / "sample" / "data").rglob("*") if p.is_file())[0]
    raw = bytearray(data.read_bytes())
    raw[5] ^= 1
    with open(data, "r+b") as fh:  # in place: the same inode and size
        fh.write(bytes(raw))
    os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns + 1))  # as any later write would
    build_site(root, site, cache_dir=cache, progress=False)
    build_site(root, tmp_path / "plain", cache_dir=cache, progress=False, debug=True)
    assert "HACKED" not in page.read_text(encoding="utf-8")
    assert tree_digest(site) == tree_digest(tmp_path / "plain")


@pytest.mark.slow
def test_editing_one_model_redraws_only_the_figures_and_pages_that_read_it(tmp_path):
    """A figure's cache entry holds the parts of the manifest and front matter it read (article/figures/reads.py), not the
    whole files: a change to one model draws its figure and writes its model page again, and nothing else; an edit
    of the front matter that no figure reads draws nothing again; going back to an earlier analysis finds the figure
    it had then."""
    import copy

    from article.pipeline import build_site
    from explorer_cache import FOLDER, make_cache, relist

    cache, root, site = tmp_path / "cache", tmp_path / "proj", tmp_path / "site"
    make_cache(cache)
    manifest_path = cache / "analysis" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    other = FOLDER.replace("tinynet/", "othernet/")  # a model points only at its own files (model_entry_ok)
    shutil.copytree(cache / "analysis" / FOLDER, cache / "analysis" / other)
    for record in (cache / "analysis" / other).rglob("*.json"):  # its records name its own files (examples' pictures)
        record.write_text(record.read_text().replace(FOLDER, other))
    manifest["models"]["othernet"] = json.loads(json.dumps({**copy.deepcopy(manifest["models"]["tinynet"]),
                                                            "label": "OtherNet"}).replace(FOLDER, other))
    manifest_path.write_text(json.dumps(manifest))
    relist(cache)
    manifest = json.loads(manifest_path.read_text())
    (root / "content" / "two").mkdir(parents=True)
    (root / "templates").symlink_to(Path(__file__).resolve().parents[1] / "templates", target_is_directory=True)
    (root / "site.yml").write_text("title: Two\ndescription: Two models.\nsite_url: https://example.org/\n"
                                   "articles: [two]\n")
    index = root / "content" / "two" / "index.md"
    front = "---\ntitle: Two models\ndescription: {}\ndate: 2026-12-01\nauthors: [{{name: A. Author}}]\n---\n\n"
    body = "".join(f"::: figure id={m} kind=nmf_explorer layers={m}:conv2 width=l-page\n{m}.\n:::\n\n"
                   for m in ("tinynet", "othernet"))
    index.write_text(front.format("First.") + body)

    def build():
        report = build_site(root, site, cache_dir=cache, progress=False)
        page = (site / "two" / "index.html").read_text(encoding="utf-8")
        pages = {m: (site / "models" / m / "index.html").stat().st_ino for m in ("tinynet", "othernet")}
        return report, page, pages

    first, _, pages = build()
    assert (first.figures, first.cache_hits) == (2, 0)
    manifest["models"]["othernet"]["label"] = "OtherNet, retrained"  # one model analysed again
    manifest["fingerprint"] = "changed with it"
    manifest_path.write_text(json.dumps(manifest))
    second, page, pages2 = build()
    assert (second.figures, second.cache_hits) == (2, 1)  # tinynet's figure is reused
    assert "OtherNet, retrained" in page
    assert pages2["tinynet"] == pages["tinynet"] and pages2["othernet"] != pages["othernet"]
    index.write_text(front.format("Second.") + body)  # the front matter, in a field no figure reads
    third, page, _ = build()
    assert (third.figures, third.cache_hits) == (2, 2) and "Second." in page
    fourth, _, _ = build()  # and the quick check of every figure's reads holds again
    assert (fourth.figures, fourth.cache_hits) == (2, 2)
    manifest["models"]["othernet"]["label"] = "OtherNet"  # back to the first analysis: its figure is kept too
    manifest_path.write_text(json.dumps(manifest))
    fifth, page, _ = build()
    assert (fifth.figures, fifth.cache_hits) == (2, 2) and "OtherNet, retrained" not in page


def test_the_render_cache_keeps_under_its_limit_dropping_what_no_build_used_for_longest(tmp_path, monkeypatch):
    """Over $VW_CACHE_LIMIT_MB, a build deletes the entries used longest ago, never one it used itself; a later
    build of the same site still hits everything it kept and renders the same bytes."""
    import os

    from article.output.sitedir import tree_digest
    from article.pipeline import build_site
    from test_render_helpers import sample_root

    root, cache_dir = sample_root(tmp_path), tmp_path / "cache"
    build_site(root, tmp_path / "s1", cache_dir=cache_dir, progress=False)
    live = {p.name for p in (cache_dir / "render").iterdir()}
    live_mb = -(-sum(p.stat().st_size for p in (cache_dir / "render").iterdir()) // (1 << 20))  # rounded up
    old, older = cache_dir / "render" / "figure-old.json", cache_dir / "render" / "figure-older.json"
    for path, days in ((old, 2), (older, 3)):  # entries of an earlier version of the site, 1.5 MB each
        cache.store(path, os.urandom(3 << 19))
        when = path.stat().st_mtime - days * 86400
        os.utime(path, (when, when))
    hit = next(p for p in (cache_dir / "render").glob("article-sample-*"))
    os.utime(hit, (hit.stat().st_atime - 5 * 86400, hit.stat().st_mtime - 5 * 86400))  # used longest ago ...

    monkeypatch.setenv(cache.LIMIT_ENV, str(live_mb + 2))  # room for one of the two old entries, not both
    report = build_site(root, tmp_path / "s2", cache_dir=cache_dir, progress=False)
    left = {p.name for p in (cache_dir / "render").iterdir()}
    assert not older.exists() and old.exists(), "the entry used longest ago goes first, and only as many as needed"
    assert live <= left, "an entry this build used (the article, read as a hit today) was deleted"
    assert report.figures == report.cache_hits
    assert tree_digest(tmp_path / "s1") == tree_digest(tmp_path / "s2")

    monkeypatch.setenv(cache.LIMIT_ENV, "0")  # nothing this build did not use stays; what it used does
    build_site(root, tmp_path / "s3", cache_dir=cache_dir, progress=False)
    assert not old.exists() and len(list((cache_dir / "render").iterdir())) < len(live)
    monkeypatch.delenv(cache.LIMIT_ENV)
    report = build_site(root, tmp_path / "s4", cache_dir=cache_dir, progress=False)
    assert report.figures == report.cache_hits and tree_digest(tmp_path / "s1") == tree_digest(tmp_path / "s4")
    assert cache.evict(cache_dir, 0, used_since=float("inf"))  # with no build protecting them, everything goes
    assert not list((cache_dir / "render").iterdir())
