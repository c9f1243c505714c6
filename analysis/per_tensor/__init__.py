"""Per-tensor analyses, one module each, registered like the article's figure kinds.

An analysis is ``fn(weight, facts) -> dict`` of record fields, pure numpy (it runs in joblib workers), registered with
``@register(name)``. The tensor stage keys each analysis's fields by the code key of its own module (its import
closure: analysis/core/codekey.py), so editing analysis/nmf.py recomputes the NMF fields of every tensor and nothing else,
and a new analysis (an SVD, say: one module here, and a figure that reads its field) computes only itself on the next
build. `tensor_report` runs all of them at once, for callers outside the stage.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported by the analyses; the build's freshness check reads this package without it
    import numpy as np


@dataclass(frozen=True)
class Facts:
    """What an analysis may know of a tensor besides its weights."""

    init: np.ndarray | None = None  # the weights at initialization (the banding lab's), for W - W_init
    skip: Mapping = field(default_factory=lambda: {"identity": "none"})  # analysis.tensor_stage.shown_tensor's facts
    k: int = 3  # NMF factors
    seed: int = 0

    def total(self, weight: np.ndarray) -> np.ndarray | None:
        """The block's total expanded weights when `weight` is its own contribution (the identity removed), else
        None."""
        if self.skip.get("identity") != "removed":
            return None
        return with_identity(weight, self.skip["identity_at"])


Analysis = Callable[..., dict]  # fn(weight: np.ndarray [out, in, h, w], facts: Facts) -> fields
ANALYSES: dict[str, Analysis] = {}


def register(name: str) -> Callable[[Analysis], Analysis]:
    """Decorator: `fn(weight, facts) -> dict` adds its fields to every tensor record under the name `name`."""
    def deco(fn: Analysis) -> Analysis:
        old = ANALYSES.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"per-tensor analysis {name!r} is registered twice: {old.__module__} and {fn.__module__}")
        ANALYSES[name] = fn
        return fn
    return deco


def registered() -> dict[str, Analysis]:
    """Every analysis of this package, by name (sorted: records and keys do not depend on import order)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return dict(sorted(ANALYSES.items()))


def code_keys(cache_dir=None) -> list[str]:
    """"module=code key" of every module of this package. The analyses are found by name, so no import closure
    reaches their code: whatever decides that records are stale (the build's fingerprint, a model's key) adds these.
    Read from the files, not imported: a content-only rebuild checks its freshness without loading scipy."""
    from analysis.core.codekey import code_key

    return [f"{info.name}={code_key(f'{__name__}.{info.name}', cache_dir=cache_dir)}"
            for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)]


def merge(parts: list[dict]) -> dict:
    """One record from analyses' fields; a dict field two analyses share (`total`: the views with the identity
    added back) is merged one level down."""
    out: dict = {}
    for part in parts:
        for key, value in part.items():
            if key in RESERVED:
                raise ValueError(f"a per-tensor analysis may not set the record's own field {key!r}")
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                if set(value) & set(out[key]):  # two analyses' values in one place: a record would mix them
                    raise ValueError(f"two per-tensor analyses both set {key}/{sorted(set(value) & set(out[key]))}")
                out[key] = {**out[key], **value}
            elif key in out:
                raise ValueError(f"two per-tensor analyses both set {key!r}")
            else:
                out[key] = value
    return out


BASE_FIELDS = ("shape", "identity", "identity_at")  # base_fields: the tensor's own, whatever is registered
RESERVED = {"model", "id", "layer", "source", "label", *BASE_FIELDS, "parts", "key", "schema"}


def tensor_report(weight: np.ndarray, *, init: np.ndarray | None = None, k: int = 3, seed: int = 0,
                  skip: dict | None = None) -> dict:
    """Every registered analysis of one [out, in, h, w] tensor, as one record (the tensor stage's, without caching).

    skip: what `weight` holds about a residual skip: {"identity": "removed", "identity_at": [y, x]} when it is a
    block's own contribution, the identity taken out; then `total` adds the views a reader can switch to (weight +
    the identity). Default {"identity": "none"}."""
    import numpy as np

    weight = np.asarray(weight, dtype=np.float32)
    facts = Facts(init=None if init is None else np.asarray(init, dtype=np.float32),
                  skip=dict(skip or {"identity": "none"}), k=k, seed=seed)
    return {**base_fields(weight, facts), **merge([fn(weight, facts) for fn in registered().values()])}


def base_fields(weight: np.ndarray, facts: Facts) -> dict:
    """The fields every record has whatever is registered: the tensor's shape and what it holds of a skip."""
    return {"shape": list(weight.shape), **facts.skip}


def with_identity(weight: np.ndarray, at) -> np.ndarray:
    """The total expanded weights of a block whose own contribution is `weight`: weight 1 added from each channel
    to itself at kernel position `at` (y, x), where the identity skip puts it."""
    import numpy as np

    total = np.array(weight, dtype=np.float32)
    idx = np.arange(min(total.shape[:2]))
    total[idx, idx, int(at[0]), int(at[1])] += 1.0
    return total
