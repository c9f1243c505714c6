"""The suite's tiers and how it runs on several cores.

`python -m pytest -m "not slow"` is the fast tier (unit tests and small builds without an analysis, a couple of
minutes); the whole suite adds everything marked `slow`: builds with an analysis, training, and the real-browser tests
(everything under tests/browser/, which this hook marks slow, so no test of the built site lands in the fast tier by
forgetting a mark).

The suite runs on every core (pytest-xdist, `-n auto --dist loadgroup` in pyproject.toml; `-n 0` runs it in one
process). A test file's tests stay on one worker, so a module's fixtures are computed once; the tests under
tests/browser/, which share one built site, all stay on one worker. Where the tests import from: `pythonpath` in pyproject.toml.
"""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser_folder = Path(config.rootpath) / "tests" / "browser"
    for item in items:
        # tests/browser/ (the session's built site) or a test marked browser elsewhere
        browser = browser_folder in Path(item.path).parents or item.get_closest_marker("browser") is not None
        if browser and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
        item.add_marker(pytest.mark.xdist_group("browser" if browser else Path(item.path).name))
