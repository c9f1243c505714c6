"""No stale output (issue 23): every cached value is keyed by the code that made it (analysis/codekey.py), so an edit
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

    # 1. An NMF edit and a new tensor field: every tensor record is made again (before: reused, and the old NMF
    #    published as fresh); the feature visualizations depend on neither and are not drawn again (before: a
    #    new field meant bumping ANALYSIS_VERSION, which was part of every picture's key).
    kept_pictures = files(pictures)
    append(proj / "analysis" / "nmf.py", """
        _nmf_rgb = nmf_rgb


        def nmf_rgb(spatial):  # a test's edit: the NMF pictures change
            return _nmf_rgb(spatial) * 0
        """)
    append(proj / "analysis" / "tensor_report.py", """
        _tensor_report = tensor_report


        def tensor_report(weight, **kwargs):  # a test's edit: one more field
            return {**_tensor_report(weight, **kwargs), "added_field": 1}
        """)
    run()
    after = tensor_records(cache)
    assert all(r.get("added_field") == 1 for r in after.values())
    for tid, record in after.items():
        if "nmf" in record:
            assert not np.any(np.asarray(record["nmf"]["rgb"])), tid
            assert np.any(np.asarray(before[tid]["nmf"]["rgb"])), tid
    assert files(pictures) == kept_pictures

    # 2. A feature-visualization edit: the pictures are drawn again (under new keys); no tensor record is remade.
    kept_tensors = files(tensors)
    append(proj / "analysis" / "featureviz" / "render.py", "# a test's edit of the optimisation code\n")
    run()
    drawn = set(files(pictures)) - set(kept_pictures)
    assert any(name.endswith(".png") for name in drawn), drawn
    assert files(tensors) == kept_tensors


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
    from analysis import codekey
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
