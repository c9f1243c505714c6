"""The model registry: every model family described once (loader, facts, recipe, label, colour, featured tensors).

Adding a model family is one `Family(...)` below. `analysis.models.load/describe/available` dispatch through it;
a family also declares the files its weights come from, which the build's torch-free freshness check hashes
(analysis/core/fingerprint.py asks `weight_files`, naming no family), so this module imports torch only inside functions.
the analysis manifest copies `label`, `color` and the featured tensors into each model's entry, so the render side
never names a model or a layer itself. A bring-your-own model has no family: it gets the automatic recipe
(analysis.recipes.auto_recipe) and a neutral look.
"""
from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from analysis.core import paths, tv_weights
from analysis.core.errors import ModelUnavailable

NEUTRAL = "#9467bd"
PathLike = str | os.PathLike | None


@dataclass(frozen=True)
class Family:
    pattern: str  # regular expression over model names
    label: str
    color: str
    load: Callable[[str, PathLike], Any]  # -> the torch module (torch is not imported here)
    facts: Callable[[str, PathLike], dict]  # describe(): source, weights + sha256, licence, accuracy, input size
    names: Callable[[], list[str]]  # the concrete names of the family
    present: Callable[[str], bool] = lambda name: True
    recipe: str | None = None  # a function of analysis.recipes taking the model (None: auto_recipe with `featured`)
    # Defaults an author's recipe replaces: extra expansions ("a -> b"), context pairs; and what figures feature:
    # "nmf" (tensor ids for the NMF explorer), "banding" (a tensor id for the banding gallery).
    featured: dict = field(default_factory=dict)
    image_size: int = 224
    # The files model `name`'s weights are read from, None where one is absent: their content keys the analysis.
    weight_files: Callable[[str], list[Path | None]] = lambda name: []

    def matches(self, name: str) -> bool:
        return re.fullmatch(self.pattern, name) is not None


# A family's torch side, imported when a model is loaded or described, not when the registry is read. Each is named
# by a literal, so the code key of every cached result (analysis/core/codekey.py) still follows it into these modules.
def _lab():
    return importlib.import_module("analysis.models.lab")


def _efficientnet():
    return importlib.import_module("analysis.models.efficientnet")


def _tv_zoo():
    return importlib.import_module("analysis.models.tv_zoo")


# ----------------------------------------------------------------------------- the banding lab

_LAB = re.compile(r"lab-(gap|flatten|rotated)-s(\d+)")


def _lab_load(name: str, cache_dir: PathLike) -> Any:
    variant, seed = _LAB.fullmatch(name).groups()
    return _lab().load_lab(variant, int(seed), cache_dir)


def _lab_facts(name: str, cache_dir: PathLike) -> dict:
    variant, seed = _LAB.fullmatch(name).groups()
    return _lab().lab_facts(variant, int(seed), cache_dir)


def _lab_family(variant: str, label: str, color: str) -> Family:
    return Family(rf"lab-{variant}-s\d+", label, color, load=_lab_load, facts=_lab_facts,
                  names=lambda: [f"lab-{variant}-s{s}" for s in _lab().LabConfig().seeds],
                  recipe="lab_recipe", image_size=32,
                  featured={"nmf": ["conv6"]})  # the last conv carries the experiment


# ----------------------------------------------------------------------------- pretrained ImageNet models

def _efficientnet_present(name: str) -> bool:
    try:
        return _efficientnet().weights_path().is_file()
    except ModelUnavailable:
        return False


def _tv_family(name: str, color: str, featured: dict | None = None, label: str | None = None,
               image_size: int = 224) -> Family:
    weights = tv_weights.BY_MODEL[name]
    return Family(re.escape(name), label or weights.label, color, load=lambda n, cache_dir: _tv_zoo().load(n),
                  facts=lambda n, cache_dir: _tv_zoo().facts(n), names=lambda: [name],
                  present=lambda n: tv_weights.present(weights), featured=featured or {}, image_size=image_size,
                  weight_files=lambda n: list(tv_weights.candidates(weights)))


FAMILIES: list[Family] = [
    _lab_family("gap", "lab: GAP", "#e45756"),
    _lab_family("flatten", "lab: flatten", "#4c78a8"),
    _lab_family("rotated", "lab: GAP, rotated inputs", "#54a24b"),
    Family("efficientnet-lite0", "EfficientNet-Lite0", "#f58518",
           load=lambda n, cache_dir: _efficientnet().load_efficientnet_lite0(),
           facts=lambda n, cache_dir: _efficientnet().facts(), names=lambda: ["efficientnet-lite0"],
           present=_efficientnet_present, weight_files=lambda n: [paths.efficientnet_lite0_file()], featured={
               # Two blocks at once: 3x3 and 5x5 depthwise kernels compose to 13x13 through a stride of 2.
               "expansions": ["_blocks.2 -> _blocks.4"],
               # Block 3 has no residual connection (stride 2): its expanded weights are all learned structure.
               # No spatial-position view (the article shows MobileNetV2's): 5x5 kernels would cost 50 images.
               "context": [{"weights": "_blocks.2 -> _blocks.3", "directions": 0}],
               # Every neuron of a featured tensor gets a feature visualization: one layer keeps the cold build short.
               "nmf": ["_blocks.2->_blocks.3"],
           }),
    _tv_family("mobilenet-v2", "#72b7b2", {
        "expansions": ["features.2 -> features.4"],
        "context": [{"weights": "features.3 -> features.4", "directions": 2}],
        # Featured layers stay small: every neuron of one gets a feature visualization in the cold build.
        "nmf": ["features.3->features.4", "features.9->features.10"],
    }),
    _tv_family("inceptionv1", "#b279a2", {
        "expansions": ["maxpool2 -> inception3b"],
        "context": [{"weights": "inception3a -> inception3b"}],
        # The "5x5" branches (3x3 in torchvision): the counterparts of the original's mixed4d_5x5, the picture of
        # Voss et al.'s Figure 1, and mixed5b_5x5, whose banding Petrov et al. show (same channel counts).
        "nmf": ["inception4d.branch3.1.conv", "inception5b.branch3.1.conv"],
        "banding": "inception5b.branch3.1.conv",
    }, label="InceptionV1"),
    _tv_family("resnet18", "#9d755d"),
    _tv_family("resnet50", "#8c564b"),
    _tv_family("vgg16", "#bab0ac"),
    _tv_family("alexnet", "#79706e"),
]


def family_of(name: str) -> Family | None:
    return next((f for f in FAMILIES if f.matches(name)), None)


def known_names() -> list[str]:
    return [n for f in FAMILIES for n in f.names()]


def presentation(name: str, recipe: Any) -> dict:
    """What the render side needs to show this model: label, colour, featured tensors, blocks."""
    fam = family_of(name)
    ids = [t.id for t in recipe.tensors]
    featured = [t for t in (fam.featured.get("nmf", []) if fam else []) if t in ids]
    if not featured:  # a third, two thirds and the end of the network
        featured = list(dict.fromkeys(ids[min(len(ids) - 1, k * len(ids) // 3)] for k in (1, 2, 3)))
    banding = fam.featured.get("banding") if fam else None
    return {"label": fam.label if fam else name, "color": fam.color if fam else NEUTRAL,
            "family": fam.pattern if fam else "bring-your-own", "featured_nmf": featured,
            "featured_banding": banding if banding in ids else None, "blocks": recipe.blocks_json(),
            "notes": recipe.notes}
