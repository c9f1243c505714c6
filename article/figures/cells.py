"""Charts drawn cell by cell: unit squares at integer grid positions (kernels, spatial factors), x to the right,
y downwards, no axes. Not a figure kind: a helper for figure modules."""
from __future__ import annotations

from typing import Any


def unit_cells(chart: Any, x: str, y: str, **encoding: Any) -> Any:
    """``chart`` (with fields ``x`` and ``y`` computed) as one rect per cell, plus the given encodings."""
    import altair as alt

    return (
        chart.transform_calculate(**{f"{x}2": f"datum.{x} + 1", f"{y}2": f"datum.{y} + 1"})
        .mark_rect()
        .encode(x=alt.X(f"{x}:Q", axis=None, scale=alt.Scale(nice=False, zero=True)), x2=f"{x}2:Q",
                y=alt.Y(f"{y}:Q", axis=None, scale=alt.Scale(nice=False, zero=True, reverse=True)), y2=f"{y}2:Q",
                **encoding)
    )
