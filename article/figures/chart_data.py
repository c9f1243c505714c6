"""A chart's rows, kept out of Altair while a figure is drawn: ``inline(values)`` stands for ``alt.Data(values=...)``.

Altair deep-copies a chart's inline rows at every chained method and checks every row against the Vega-Lite schema
when the chart becomes a spec: about half of a cold render's time under the profiler (bench/README.md). Inside
``collecting()`` (figrender's call of a figure function) ``inline`` gives Altair only the name ``split_data`` would
give the rows (``d-<sha256 of their JSON>``) and keeps them here; ``split_data`` puts them into the spec's
``datasets``, so the page and its files are what they were with the rows inline. Outside it (a chart composed in a
test) the rows stay inline.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ..structure import jsonio

_ROWS: ContextVar[dict[str, Any] | None] = ContextVar("vw_chart_rows", default=None)


def inline(values: list) -> Any:
    """``alt.Data`` for ``values`` (a list of JSON-like rows): by name while collecting, else inline. The rows are
    named by their content now and kept by reference: do not change them afterwards."""
    import altair as alt

    rows = _ROWS.get()
    if rows is None:
        return alt.Data(values=values)
    name = dataset_name(values)
    rows[name] = values
    return alt.Data(name=name)


def dataset_name(values: Any) -> str:
    """The name of a chart's inline rows in its page's datasets: their content's digest."""
    return "d-" + hashlib.sha256(jsonio.dumps(values).encode()).hexdigest()[:16]


@contextmanager
def collecting() -> Iterator[dict[str, Any]]:
    """Rows given to ``inline`` in this block, by name."""
    rows: dict[str, Any] = {}
    token = _ROWS.set(rows)
    try:
        yield rows
    finally:
        _ROWS.reset(token)
