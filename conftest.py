"""The suite's tiers and how it runs on several cores.

`python -m pytest -m "not slow"` is the fast tier (unit tests and small builds without an analysis, a couple of
minutes); the whole suite adds everything marked `slow`: builds with an analysis, training, and the real-browser tests
(everything under tests/browser/, which this hook marks slow, so no test of the built site lands in the fast tier by
forgetting a mark).

The suite runs on every core (pytest-xdist, `-n auto --dist loadgroup --no-loadscope-reorder` in pyproject.toml;
`-n 0` runs it in one process). A test file's tests stay on one worker, so a module's fixtures are computed once.
The browser tests share one built site (tests/browser/shared_site.py): the controller starts building it as soon as
browser tests are collected, their files are handed out last, and they spread over every worker once it is built.
Where the tests import from: `pythonpath` in pyproject.toml.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
BROWSER = ROOT / "tests" / "browser"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups: dict[str, int] = {}
    for item in items:
        # tests/browser/ (the run's built site) or a test marked browser elsewhere
        browser = BROWSER in Path(item.path).parents or item.get_closest_marker("browser") is not None
        if browser and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
        group = f"browser:{Path(item.path).name}" if browser else Path(item.path).name
        item.add_marker(pytest.mark.xdist_group(group))
        groups[group] = groups.get(group, 0) + 1
    # Work is handed out in this order (--no-loadscope-reorder): the largest files first, as pytest-xdist would, and
    # the browser files last, so that the site they share is built (in the background, below) while the rest runs.
    items.sort(key=lambda i: (_group(i).startswith("browser:"), -groups[_group(i)]))


def _group(item: pytest.Item) -> str:
    return next(m.args[0] for m in item.iter_markers("xdist_group"))


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's controller, once a worker has collected
def pytest_xdist_node_collection_finished(node, ids: list[str]) -> None:
    config = node.config
    if getattr(config, "_vw_site_build", None) is not None or os.environ.get("VW_TEST_SITE"):
        return
    if not any(i.startswith("tests/browser/") for i in ids):
        config._vw_site_build = False
        return
    from browser.shared_site import SHARED_SITE  # tests/ is on the path (pyproject.toml)

    folder = config._tmp_path_factory.getbasetemp() / SHARED_SITE  # every worker's temporary folder is inside it
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "background.log", "w") as log:  # the child keeps its own handle
        config._vw_site_build = subprocess.Popen(
            [sys.executable, str(BROWSER / "shared_site.py"), str(folder)], cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,  # its own process group: stopped with its children
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])})


def pytest_unconfigure(config: pytest.Config) -> None:
    build = getattr(config, "_vw_site_build", None)
    if build and build.poll() is None:  # the run ended (or was stopped) before the site was needed
        os.killpg(build.pid, signal.SIGTERM)
