"""An author's budget for feature visualizations: at most `count` images in all and/or `seconds` of rendering per build.

Cached images count towards `count` but cost nothing, so a later build with a larger count renders only the neurons
the earlier one left out.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Budget:
    count: int | None = None  # images this build may list, cached ones included (None: no limit)
    every: bool = False  # `featureviz_budget: all`: every neuron and NMF factor of every analysed layer
    seconds: float | None = None  # rendering time this build may spend (None: no limit); checked between batches
    spent_count: int = 0
    rendered: int = 0  # of spent_count, the images rendered by this build (the rest came from the cache)
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def from_json(cls, d: dict | str | None) -> "Budget":
        if d == "all":
            return cls(every=True)
        d = d or {}
        return cls(count=d.get("count"), seconds=d.get("seconds"))

    def allowed(self, wanted: int) -> int:
        """How many of `wanted` new images may be rendered now."""
        if self.seconds is not None and time.perf_counter() - self.started >= self.seconds:
            return 0
        if self.count is None:
            return wanted
        return max(0, min(wanted, self.count - self.spent_count))

    def spend(self, n: int) -> None:
        self.spent_count += n

    def describe(self) -> str:
        parts = ([f"{self.count} pictures"] if self.count is not None else []) + \
                ([f"{self.seconds:g} s"] if self.seconds is not None else [])
        return "every neuron" if self.every else ", ".join(parts) or "unlimited"
