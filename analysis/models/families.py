"""One entry per model family: how it is labelled and coloured, which recipe it gets, what it features.

The analysis manifest copies `label`, `color` and `featured` into every model's entry, so the render side never
names a model or a layer itself. A model without a family of its own (bring-your-own) gets the automatic recipe
and a neutral look.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from analysis import recipes

NEUTRAL = "#9467bd"


@dataclass(frozen=True)
class Family:
    pattern: str  # regular expression over model names
    label: str  # may use {variant}
    color: str
    recipe: Callable[[nn.Module, int, recipes.RecipeSpec | None, dict], recipes.Recipe] | None = None
    # Defaults an author's recipe replaces: extra expansions ("a -> b"), context pairs, NMF layers to feature.
    featured: dict = field(default_factory=dict)
    image_size: int = 224

    def matches(self, name: str) -> bool:
        return re.fullmatch(self.pattern, name) is not None


def _lab(model, image_size, spec, featured):
    return recipes.lab_recipe(model)


FAMILIES: list[Family] = [
    Family(r"lab-gap-s\d+", "lab: GAP", "#e45756", recipe=_lab, image_size=32),
    Family(r"lab-flatten-s\d+", "lab: flatten", "#4c78a8", recipe=_lab, image_size=32),
    Family(r"lab-rotated-s\d+", "lab: GAP, rotated inputs", "#54a24b", recipe=_lab, image_size=32),
    Family("efficientnet-lite0", "EfficientNet-Lite0", "#f58518", featured={
        # Two blocks at once: 3x3 and 5x5 depthwise kernels compose to 7x7.
        "expansions": ["_blocks.2 -> _blocks.4"],
        # Block 3 has no residual connection (stride 2): its expanded weights are all learned structure.
        "context": [{"weights": "_blocks.2 -> _blocks.3", "directions": 2}],
        "nmf": ["_blocks.2->_blocks.3", "_blocks.7->_blocks.8", "_blocks.14->_blocks.15+_conv_head"],
    }),
    Family("mobilenet-v2", "MobileNetV2", "#72b7b2", featured={
        "expansions": ["features.2 -> features.4"],
        "context": [{"weights": "features.3 -> features.4", "directions": 2}],
        "nmf": ["features.3->features.4", "features.9->features.10", "features.16->features.17+features.18"],
        "banding": "features.16->features.17+features.18",
    }),
    Family("inceptionv1", "InceptionV1", "#b279a2", featured={
        "expansions": ["maxpool2 -> inception3b"],
        "context": [{"weights": "inception3a -> inception3b"}],
        "nmf": ["inception4d.branch3.1.conv", "inception5b.branch2.1.conv"],
        "banding": "inception5b.branch2.1.conv",
    }),
    Family("resnet18", "ResNet-18", "#9d755d"),
    Family("resnet50", "ResNet-50", "#9d755d"),
    Family("vgg16", "VGG-16", "#bab0ac"),
    Family("alexnet", "AlexNet", "#bab0ac"),
]


def family_of(name: str) -> Family | None:
    return next((f for f in FAMILIES if f.matches(name)), None)


def recipe_for(name: str, model: nn.Module, image_size: int | None = None,
               spec: recipes.RecipeSpec | None = None) -> recipes.Recipe:
    fam = family_of(name)
    size = image_size or (fam.image_size if fam else 224)
    if fam is not None and fam.recipe is not None:
        return fam.recipe(model, size, spec, fam.featured)
    return recipes.auto_recipe(model, size, spec, fam.featured if fam else None)


def presentation(name: str, recipe: recipes.Recipe) -> dict:
    """What the render side needs to show this model: label, colour, featured tensors, blocks."""
    fam = family_of(name)
    ids = [t.id for t in recipe.tensors]
    featured = [t for t in (fam.featured.get("nmf", []) if fam else []) if t in ids]
    if not featured:  # a third, two thirds and the end of the network
        featured = list(dict.fromkeys(ids[min(len(ids) - 1, k * len(ids) // 3)] for k in (1, 2, 3)))
    return {"label": fam.label if fam else name, "color": fam.color if fam else NEUTRAL,
            "family": fam.pattern if fam else "byo", "featured_nmf": featured, "blocks": recipe.blocks_json(),
            "featured_banding": fam.featured.get("banding") if fam else None,
            "notes": recipe.notes}
