"""The layers README describes, as import-linter contracts ([tool.importlinter] in pyproject.toml): the render side never
imports torch, the analysis never imports the article side, no package of article/ imports one above it (and figures,
markup and output never each other), and no two sibling modules import each other."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint(root: Path) -> subprocess.CompletedProcess:
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}, timeout=120)


def copy_tree(dest: Path) -> None:
    """The packages and the contracts, to break one in a copy."""
    for name in ("article", "analysis", "pyproject.toml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / name).write_bytes(src.read_bytes())


def test_import_contracts_are_kept():
    proc = lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize("offender, line, broken", [
    ("article/figures/sample.py", "import torch", "never imports torch"),
    ("article/markup/renderer.py", "def _late():\n    from analysis import pipeline", "never imports torch"),
    ("analysis/core/jsonio.py", "from article import urls", "knows nothing of the article"),
    ("article/structure/urls.py", "from .. import pipeline", "No import cycles"),
    ("article/markup/citation.py", "def _late():\n    from ..explorer import model_pages",
     "no package imports one above it"),
    ("article/cache/fileset.py", "from ..structure import errors", "no package imports one above it"),
    ("article/figures/sample.py", "from ..markup import renderer", "no package imports one above it"),
])
def test_a_broken_layer_is_caught(tmp_path: Path, offender: str, line: str, broken: str):
    """A copy of the tree with one forbidden import added (inside a function too) breaks the contract it should."""
    copy_tree(tmp_path)
    path = tmp_path / offender
    path.write_text(path.read_text(encoding="utf-8") + "\n\n" + line + "\n", encoding="utf-8")
    proc = lint(tmp_path)
    assert proc.returncode != 0, proc.stdout
    broken_section = proc.stdout.split("Broken contracts", 1)[-1]
    assert broken in broken_section, proc.stdout


def test_a_new_module_of_the_render_side_must_take_a_layer(tmp_path: Path):
    """The layers contract is exhaustive: a module added to article/ without a place in it breaks the contract."""
    copy_tree(tmp_path)
    (tmp_path / "article" / "stage.py").write_text('"""A stage nobody placed."""\n', encoding="utf-8")
    proc = lint(tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert "no package imports one above it" in proc.stdout.split("Broken contracts", 1)[-1], proc.stdout


def test_the_analysis_stage_imports_torch_only_when_it_runs_the_analysis():
    """The contract allows the analysis stage's three crossings; this checks they stay inside its functions."""
    code = ("import sys, article.analysis_stage, article.pipeline, analysis.core.fingerprint; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120).stdout
    assert out.strip() == "[]"
