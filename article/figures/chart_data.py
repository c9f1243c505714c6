"""A chart's rows, kept out of Altair while a figure is drawn: ``inline(values)`` stands for ``alt.Data(values=...)``.

Altair deep-copies a chart's inline rows at every chained method and checks every row against the Vega-Lite schema
when the chart becomes a spec: two thirds of a cold render's time went there (bench/README.md). Inside
``collecting()`` (figrender's call of a figure function) ``inline`` gives Altair only the name figrender's
``split_data`` would give the rows (``d-<sha256 of their JSON>``) and keeps the rows here; figrender puts them back
into the spec's ``datasets``, so the page and its files are byte for byte what they were with the rows inline.
Outside it (a chart composed in a test) the rows stay inline.
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


def with_rows(spec: dict[str, Any], rows: dict[str, Any]) -> dict[str, Any]:
    """``spec`` (a Vega-Lite dict) with the collected rows it names added to its ``datasets``."""
    named: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and isinstance(data.get("name"), str):
                named.add(data["name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    wanted = {n: rows[n] for n in sorted(named) if n in rows}
    if not wanted:
        return spec
    return dict(spec, datasets={**(spec.get("datasets") or {}), **wanted})
