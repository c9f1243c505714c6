"""The layers README describes, as import-linter contracts ([tool.importlinter] in pyproject.toml): the render side
never imports torch and takes from the analysis only its torch-free core (analysis/core/, which imports nothing else
of the analysis), the analysis never imports the article side, no package of article/ imports one above it (and figures,
markup and output never each other), and no two sibling modules import each other."""
from __future__ import annotations

import ast
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
    ("article/figures/sample.py", "from analysis.nmf import split_matrix", "only its torch-free core"),
    ("article/structure/urls.py", "def _late():\n    from analysis import tensor_report", "only its torch-free core"),
    ("analysis/core/spec.py", "def _late():\n    from analysis import recipes", "core is closed"),
    ("analysis/core/banding.py", "from analysis.per_tensor import register", "core is closed"),
    ("analysis/core/jsonio.py", "def _late():\n    import torch", "core never imports torch"),
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
    """The contract allows the analysis stage's crossings; this checks they stay inside its functions, and that every
    module of analysis/core/ (the registries it reads included) imports without torch."""
    code = ("import sys, importlib, pkgutil, article.analysis_stage, article.pipeline, analysis.core as core; "
            "[importlib.import_module(f'analysis.core.{m.name}') for m in pkgutil.iter_modules(core.__path__)]; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120).stdout
    assert out.strip() == "[]"


def analysis_imports(path: Path) -> list[str]:
    """Every analysis module a file imports, inside functions too (build.py is a module, not a package import-linter
    reads, so its side of the core contract is checked here)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "analysis" else [f"analysis.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [n for n in names if n.split(".")[0] == "analysis"]
    return found


def outside_core(path: Path) -> list[str]:
    return [n for n in analysis_imports(path) if n != "analysis.core" and not n.startswith("analysis.core.")]


def test_build_py_imports_from_the_analysis_only_its_core():
    assert analysis_imports(ROOT / "build.py"), "build.py reads the analysis config and errors from analysis.core"
    assert outside_core(ROOT / "build.py") == []


@pytest.mark.parametrize("line", ["from analysis.pipeline import run", "def _late():\n    from analysis import models",
                                  "import analysis.device"])
def test_build_py_importing_past_the_core_is_caught(tmp_path: Path, line: str):
    copy = tmp_path / "build.py"
    copy.write_text((ROOT / "build.py").read_text(encoding="utf-8") + "\n\n" + line + "\n", encoding="utf-8")
    assert outside_core(copy) != []
