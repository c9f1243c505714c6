"""Code keys (analysis/core/codekey.py): the import closure of a module, project files by content, libraries by version."""
from __future__ import annotations

import json
import textwrap

import pytest

from analysis.core import codekey


def fresh_process() -> dict:
    return {"_project_tops": {}, "_files": {}, "_keys": {}, "_modules": {}, "_libraries": {},
            "_memo": {"path": None, "imports": {}, "libraries": {}, "keys": {}, "dirty": False}}


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A small project of its own: package `pkg` whose modules import each other in the ways code does."""
    monkeypatch.setattr(codekey, "ROOT", tmp_path)
    for name, value in fresh_process().items():
        monkeypatch.setattr(codekey, name, value)
    files = {
        "pkg/__init__.py": "",
        "pkg/maker.py": """
            import json
            from . import helper
            from .sub import deep


            def make():
                from pkg.lazy import value  # an import inside a function counts
                import numpy as np
                return np.asarray(value)
            """,
        "pkg/helper.py": "from .sub.deep import X as Y\n",
        "pkg/lazy.py": "value = 1\n",
        "pkg/unrelated.py": "import pkg.helper\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/deep.py": "import importlib\nX = importlib.import_module('pkg.dynamic')\n",
        "pkg/dynamic.py": "",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    return tmp_path


def test_the_closure_follows_every_kind_of_import_and_stops_at_the_project(project):
    modules, libraries = codekey.closure(["pkg.maker"])
    assert set(modules) == {"pkg", "pkg.maker", "pkg.helper", "pkg.lazy", "pkg.sub", "pkg.sub.deep", "pkg.dynamic"}
    assert libraries == {"numpy"}  # json is the standard library: it comes with the Python version


def test_an_edit_changes_the_keys_of_the_modules_that_import_it_and_no_others(project, tmp_path):
    maker, lazy = codekey.code_key("pkg.maker"), codekey.code_key("pkg.lazy")
    unrelated = codekey.code_key("pkg.unrelated")

    def edit(rel: str, text: str) -> None:
        (project / rel).write_text(text)
        codekey.forget()  # a new process (a process keys the code as it first read it)

    edit("pkg/unrelated.py", "import pkg.helper\n# edited\n")
    assert codekey.code_key("pkg.maker") == maker
    edit("pkg/lazy.py", "value = 2\n")
    assert codekey.code_key("pkg.maker") != maker and codekey.code_key("pkg.lazy") != lazy
    assert codekey.code_key("pkg.unrelated") != unrelated  # its own edit
    before = codekey.code_key("pkg.unrelated")
    edit("pkg/dynamic.py", "# reached through helper -> sub.deep -> import_module\n")
    assert codekey.code_key("pkg.unrelated") != before


def test_a_process_keys_the_code_it_first_read(project):
    """An edit made while a build runs is not taken for the code that is running (the next build sees it)."""
    key = codekey.code_key("pkg.maker")
    (project / "pkg" / "lazy.py").write_text("value = 3\n")
    assert codekey.code_key("pkg.maker") == key
    codekey.forget()
    assert codekey.code_key("pkg.maker") != key


def test_a_library_counts_by_its_installed_version(project, monkeypatch):
    numpy = codekey.library_stamp("numpy")
    assert numpy.startswith("numpy-") and numpy.endswith(".dist-info")
    assert codekey.library_stamp("PIL").lower().startswith("pillow-")  # import name and distribution differ
    assert codekey.library_stamp("surely_not_installed_anywhere") == "absent"
    key = codekey.code_key("pkg.maker")
    monkeypatch.setitem(codekey._libraries, "numpy", "numpy-0.0.dist-info")
    monkeypatch.setattr(codekey, "_keys", {})  # keys are kept for the process: as if a new one
    assert codekey.code_key("pkg.maker") != key
    assert codekey.code_key("pkg.lazy") == codekey.code_key("pkg.lazy")


def test_parsed_imports_are_remembered_between_processes_by_content(project, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    key = codekey.code_key("pkg.maker", cache_dir=cache)
    memo = json.loads((cache / codekey.MEMO_NAME).read_text())
    assert len(memo["imports"]) == 5 and memo["libraries"]["numpy"][1].startswith("numpy-")
    parse = codekey._parse_imports
    for name, value in fresh_process().items():  # a new process: nothing parsed yet; the memo answers
        monkeypatch.setattr(codekey, name, value)
    monkeypatch.setattr(codekey, "_parse_imports", lambda source: pytest.fail("parsed again"))
    assert codekey.code_key("pkg.maker", cache_dir=cache) == key
    (cache / codekey.MEMO_NAME).write_text("{not json")  # a damaged memo is an empty one
    for name, value in fresh_process().items():
        monkeypatch.setattr(codekey, name, value)
    monkeypatch.setattr(codekey, "_parse_imports", parse)
    assert codekey.code_key("pkg.maker", cache_dir=cache) == key
    assert json.loads((cache / codekey.MEMO_NAME).read_text())["imports"]


def test_the_project_keys_cover_what_the_issue_names():
    """The NMF analysis holds analysis.nmf, and the tensor stage (the tensor itself, how it is expanded) holds no
    per-tensor analysis and no feature visualization; the featureviz cache holds neither NMF nor the tensor report;
    a figure's key holds the explorer links it embeds; social.py holds the theme."""
    assert "analysis.nmf" in codekey.closure(["analysis.per_tensor.nmf"])[0]
    tensors = codekey.closure(["analysis.tensor_stage"])[0]
    assert "analysis.nmf" not in tensors and "analysis.core.banding" not in tensors
    assert not any(m.startswith(("analysis.featureviz", "analysis.per_tensor.")) for m in tensors)
    featureviz = codekey.closure(["analysis.featureviz.cache"])[0]
    assert "analysis.featureviz.render" in featureviz
    assert "analysis.nmf" not in featureviz and "analysis.tensor_report" not in featureviz
    assert "article.structure.theme" in codekey.closure(["article.output.social"])[0]


def test_a_later_process_checks_a_key_by_its_files_stats_without_reading_them(project, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setattr(codekey, "RACY_NS", 0)  # the files were written just now: trust their stats anyway
    unrelated = codekey.code_key("pkg.unrelated", cache_dir=cache)
    lazy = codekey.code_key("pkg.lazy", cache_dir=cache)
    (project / "pkg" / "lazy.py").write_text("value = 4\n")  # edited while this process runs:
    maker = codekey.code_key("pkg.maker", cache_dir=cache)  # keyed (and remembered) as lazy.py was first read
    read, reads = codekey._read, []
    for name, value in fresh_process().items():  # the next build
        monkeypatch.setattr(codekey, name, value)
    monkeypatch.setattr(codekey, "_read", lambda path: reads.append(path) or read(path))
    assert codekey.code_key("pkg.unrelated", cache_dir=cache) == unrelated and reads == []
    assert codekey.code_key("pkg.maker", cache_dir=cache) != maker and reads  # lazy.py changed since it was read
    assert codekey.code_key("pkg.lazy", cache_dir=cache) != lazy


def test_two_checkouts_sharing_a_cache_folder_keep_their_own_keys(project, tmp_path, monkeypatch):
    """A worktree built with another checkout's cache folder: its own files decide its keys, not the other's memo."""
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setattr(codekey, "RACY_NS", 0)
    first = codekey.code_key("pkg.lazy", cache_dir=cache)
    other = tmp_path / "other"
    (other / "pkg").mkdir(parents=True)
    (other / "pkg" / "__init__.py").write_text("")
    (other / "pkg" / "lazy.py").write_text("value = 2\n")  # the same module, other code
    for name, value in fresh_process().items():  # a build of the other checkout
        monkeypatch.setattr(codekey, name, value)
    monkeypatch.setattr(codekey, "ROOT", other)
    assert codekey.code_key("pkg.lazy", cache_dir=cache) != first


def test_the_analysis_code_key_covers_every_model_family_module():
    """The registry imports each family's torch side lazily; the analysis's code key must still follow it there, or an
    edited architecture (a forward pass, a state-dict mapping) would leave its old results fresh."""
    from pathlib import Path

    from analysis.core.codekey import closure

    project, _ = closure(["analysis.pipeline"])
    folder = Path(__file__).resolve().parents[1] / "analysis" / "models"
    wanted = {"analysis.models" if p.stem == "__init__" else f"analysis.models.{p.stem}" for p in folder.glob("*.py")}
    assert wanted <= set(project), sorted(wanted - set(project))
