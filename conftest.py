"""The suite's two tiers. `python -m pytest -m "not slow"` is the fast tier (unit tests and small builds without an
analysis, a couple of minutes); the whole suite adds everything marked `slow`: builds with an analysis, training, and
the real-browser tests (marked `browser`, which this hook makes slow too, so no browser test can land in the fast
tier by forgetting a mark). Where the tests import from: `pythonpath` in pyproject.toml.
"""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("browser") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
