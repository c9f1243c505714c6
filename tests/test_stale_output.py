"""No stale output (issue 23): every cached value is keyed by the code that made it (analysis/core/codekey.py), so an edit
of that code, or of a library it imports, makes it again, an unrelated edit does not, and --clean makes everything
again. Code edits are made in a copy of the project, built in fresh processes, as an author would."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from test_pipeline_byo import FACTORY

REPO = Path(__file__).resolve().parents[1]
CODE = shutil.ignore_patterns("__pycache__", "*.pyc")


def copy_code(proj: Path, *packages: str) -> None:
    for name in packages:
        shutil.copytree(REPO / name, proj / name, ignore=CODE)


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n" + textwrap.dedent(text), encoding="utf-8")


def make_model(folder: Path) -> None:
    """A tiny bring-your-own model (test_pipeline_byo's inverted-residual net) with its weights."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tinynet.py").write_text(FACTORY)
    subprocess.run([sys.executable, "-c", "import sys, torch; sys.path.insert(0, sys.argv[1]); import tinynet; "
                    "torch.manual_seed(0); torch.save(tinynet.make().state_dict(), sys.argv[1] + '/tiny.pt')",
                    str(folder)], check=True, capture_output=True)


# ------------------------------------------------------------------------------------------------ analysis records

ANALYSE = """
import sys
from pathlib import Path
from analysis.pipeline import AnalysisConfig, ModelSpec, run
art, cache = Path(sys.argv[1]), Path(sys.argv[2])
run(AnalysisConfig(models=[ModelSpec(name="tiny", factory="tinynet:make", weights=str(art / "tiny.pt"),
                                     search_path=str(art), image_size=32)],
                   cache_dir=cache, n_jobs=1, featureviz={"size": 32, "steps": 2}))
"""


def files(folder: Path) -> dict[str, tuple[int, int]]:
    """Each file under ``folder`` but its listing (manifest.json, rewritten by every run): (inode, mtime_ns), which
    a rewrite changes."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "manifest.json"}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stale-analysis")
    proj, cache = tmp / "proj", tmp / "cache"
    copy_code(proj, "analysis")
    make_model(tmp / "art")

    def run() -> str:
        done = subprocess.run([sys.executable, "-c", ANALYSE, str(tmp / "art"), str(cache)], cwd=proj,
                              env=dict(os.environ, PYTHONPATH=str(proj)), capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    run()
    return proj, cache, run


def tensor_records(cache: Path) -> dict[str, dict]:
    manifest = json.loads((cache / "analysis" / "manifest.json").read_text())
    return {t["id"]: json.loads((cache / "analysis" / t["file"]).read_text())
            for t in manifest["models"]["tiny"]["tensors"]}


@pytest.mark.slow
def test_editing_the_analysis_code_remakes_exactly_the_records_it_computes(analysed):
    proj, cache, run = analysed
    folder = json.loads((cache / "analysis" / "manifest.json").read_text())["models"]["tiny"]["folder"]
    tensors, pictures = cache / "analysis" / folder / "tensors", cache / "featureviz"
    before = tensor_records(cache)
    assert any("nmf" in r for r in before.values()) and files(pictures)

    # 1. An NMF edit and a new per-tensor analysis (one module that registers itself): exactly those two analyses run
    #    again on every tensor (before: the old NMF was published as fresh); banding and the views are kept under
    #    their own keys; the feature visualizations depend on none of them and are not drawn again.
    kept_pictures = files(pictures)
    append(proj / "analysis" / "nmf.py", """
        _nmf_rgb = nmf_rgb


        def nmf_rgb(spatial):  # a test's edit: the NMF pictures change
            return _nmf_rgb(spatial) * 0
        """)
    (proj / "analysis" / "per_tensor" / "svd.py").write_text(textwrap.dedent("""
        \"\"\"A test's new analysis: the largest singular value of each tensor.\"\"\"
        import numpy as np

        from analysis.per_tensor import register


        @register("svd")
        def svd(weight, facts):
            return {"svd_top": float(np.linalg.svd(weight.reshape(weight.shape[0], -1), compute_uv=False)[0])}
        """), encoding="utf-8")
    contexts = {p.name: p.stat().st_mtime_ns for p in (cache / "analysis" / folder).glob("context-*.json")}
    assert contexts
    out = run()
    assert "tensor(s) on 1 worker(s) (nmf, svd only)" in out, out
    # the weights-in-context records copy the NMF pictures: made again too
    assert all((cache / "analysis" / folder / name).stat().st_mtime_ns != t for name, t in contexts.items())
    after = tensor_records(cache)
    assert all(r["svd_top"] > 0 for r in after.values())
    for tid, record in after.items():
        for kept in ("banding", "views"):
            assert record["parts"][kept] == before[tid]["parts"][kept], (tid, kept)
        assert record["parts"]["nmf"]["key"] != before[tid]["parts"]["nmf"]["key"]
        if "nmf" in record:
            assert not np.any(np.asarray(record["nmf"]["rgb"])), tid
            assert np.any(np.asarray(before[tid]["nmf"]["rgb"])), tid
    assert files(pictures) == kept_pictures
    # ... and an analysis removed takes its fields with it, nothing run again.
    (proj / "analysis" / "per_tensor" / "svd.py").unlink()
    out = run()
    assert "tensor(s) on" not in out, out
    assert not any("svd_top" in r or "svd" in r["parts"] for r in tensor_records(cache).values())

    # 2. A feature-visualization edit: the pictures are drawn again (under new keys); no tensor record is remade.
    kept_tensors = files(tensors)
    append(proj / "analysis" / "featureviz" / "render.py", "# a test's edit of the optimisation code\n")
    run()
    drawn = set(files(pictures)) - set(kept_pictures)
    assert any(name.endswith(".png") for name in drawn), drawn
    assert files(tensors) == kept_tensors


FINGERPRINT = "from analysis.core.fingerprint import fingerprint; print(fingerprint({'models': []}))"


def test_the_build_sees_an_edited_or_added_per_tensor_analysis(tmp_path):
    """The analyses are found by name, so no import closure reaches them: the build's freshness check must still
    change when one is edited or added (else the build would say the analysis is unchanged and skip it)."""
    proj = tmp_path / "proj"
    copy_code(proj, "analysis")

    def key() -> str:
        done = subprocess.run([sys.executable, "-c", FINGERPRINT], cwd=proj, env=dict(os.environ, PYTHONPATH=str(proj)),
                              capture_output=True, text=True, check=True)
        return done.stdout.strip()

    first = key()
    append(proj / "analysis" / "nmf.py", "# a test's edit\n")
    edited = key()
    (proj / "analysis" / "per_tensor" / "svd.py").write_text(
        "from analysis.per_tensor import register\n\n\n@register('svd')\ndef svd(weight, facts):\n    return {}\n")
    assert len({first, edited, key()}) == 3


# ------------------------------------------------------------------------------------------------ --clean

def write_article(root: Path, body: str, models: str = "") -> None:
    (root / "content" / "tiny").mkdir(parents=True, exist_ok=True)
    (root / "content" / "tiny" / "index.md").write_text(
        "---\ntitle: Tiny\ndescription: A tiny model.\ndate: 2026-12-01\nauthors: [{name: A. Author}]\n"
        + models + "---\n\n" + body, encoding="utf-8")
    (root / "site.yml").write_text(
        "title: Stale\ndescription: Test site.\nsite_url: https://example.org/\narticles: [tiny]\n"
        "analysis: {models: [], n_jobs: 1, featureviz: {size: 32, steps: 2}}\n", encoding="utf-8")
    if not (root / "templates").exists():
        (root / "templates").symlink_to(REPO / "templates", target_is_directory=True)


@pytest.mark.slow
def test_clean_recomputes_every_analysis_and_render_but_keeps_the_lab_weights(tmp_path):
    import build

    root, cache, site = tmp_path / "proj", tmp_path / "cache", tmp_path / "site"
    make_model(root / "content" / "tiny")
    write_article(root, "::: figure id=nmf kind=nmf_explorer model=tiny width=l-page\nNMF.\n:::\n",
                  "models:\n  tiny: {factory: 'tinynet:make', weights: tiny.pt, image_size: 32}\n")
    build.build(root, site, cache, progress=False)
    lab = cache / "banding-lab" / "gap-s0.pt"  # stands for the lab's trained weights: minutes of training
    lab.parent.mkdir(parents=True, exist_ok=True)
    lab.write_bytes(b"trained weights")
    manifest = json.loads((cache / "analysis" / "manifest.json").read_text())
    victim = cache / "analysis" / manifest["models"]["tiny"]["tensors"][0]["file"]
    record = json.loads(victim.read_text())
    true_max = record["max_abs"]
    victim.write_text(json.dumps({**record, "max_abs": 123.0}))  # same key: only recomputing replaces it
    pictures = files(cache / "featureviz")
    assert any(name.endswith(".png") for name in pictures)

    report = build.build(root, site, cache, clean=True, progress=False)
    assert json.loads(victim.read_text())["max_abs"] == pytest.approx(true_max)
    again = files(cache / "featureviz")
    assert set(again) == set(pictures)
    assert all(again[name] != pictures[name] for name in again if name.endswith(".png"))  # drawn again
    assert report.figures == 1 and report.cache_hits == 0
    assert lab.read_bytes() == b"trained weights"


# ------------------------------------------------------------------------------------------------ render side

@pytest.mark.slow
def test_figures_and_social_images_follow_the_code_they_embed(tmp_path):
    """A figure embeds links made by the explorer helpers and the social image draws with the theme's colours:
    editing either makes them again (before, both were served from the render cache)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from explorer_cache import make_cache

    proj, cache = tmp_path / "proj", tmp_path / "cache"
    copy_code(proj, "analysis", "article")
    shutil.copy(REPO / "build.py", proj / "build.py")
    make_cache(cache)
    write_article(proj, "::: figure id=nmf kind=nmf_explorer layers=tinynet:conv2 width=l-page\nNMF.\n:::\n")

    def build() -> tuple[str, bytes]:
        done = subprocess.run([sys.executable, "build.py", "--cache-dir", str(cache)], cwd=proj,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        page = proj / "site" / "tiny" / "index.html"
        return page.read_text(encoding="utf-8"), (proj / "site" / "tiny" / "social.png").read_bytes()

    page, social = build()
    assert "models/tinynet/index.html#conv2" in page
    line = 'href = f"{root}models/{model_slug(model)}/index.html"'
    helper = next(p for p in (proj / "article").rglob("*.py") if line in p.read_text())
    helper.write_text(helper.read_text(encoding="utf-8").replace(line, line[:-1] + '?from=figure"'), encoding="utf-8")
    theme = proj / "article" / "structure" / "theme.py"
    text = theme.read_text(encoding="utf-8")
    accent = re.search(r'"accent": "(#[0-9a-f]{6})"', text).group(1)
    theme.write_text(text.replace(f'"accent": "{accent}"', '"accent": "#00aa00"', 1), encoding="utf-8")

    page2, social2 = build()
    assert "models/tinynet/index.html?from=figure#conv2" in page2
    assert social2 != social


def test_figure_and_article_keys_hold_the_versions_of_the_libraries_they_import(monkeypatch):
    from analysis.core import codekey
    from article import article_cache
    from article.figures import figure_cache, registry

    registry.discover()
    figure, article = figure_cache.figure_code("nmf_explorer"), article_cache.code()
    for library in ("altair", "vl_convert", "PIL"):
        codekey.library_stamp(library)
        monkeypatch.setitem(codekey._libraries, library, f"{library}-0.0.dist-info")  # as if another were installed
        monkeypatch.setattr(codekey, "_keys", {})  # in a new process
        assert figure_cache.figure_code("nmf_explorer") != figure, library
        assert article_cache.code() != article, library
        monkeypatch.undo()
