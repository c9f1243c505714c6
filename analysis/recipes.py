"""Which tensors of which model the article analyses: one small recipe per model family.

A recipe names weight tensors (a conv's own weight, or the expanded weight between two modules) and the
neuron pairs that get feature visualizations and dataset examples. Names are as in `model.named_modules()`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn


@dataclass(frozen=True)
class TensorJob:
    """One [out, in, h, w] tensor to analyse: a conv weight (`layer`), or expanded weights (`source`..`layer`)."""

    layer: str  # conv module name, or the upper module of an expanded weight
    source: str | None = None  # lower module for expanded weights; None for a conv's own weight
    label: str = ""  # short human name shown in the article

    @property
    def id(self) -> str:
        return self.layer if self.source is None else f"{self.source}->{self.layer}"


@dataclass(frozen=True)
class ContextJob:
    """A neuron-pair figure: outputs of `upper` and inputs in `lower` joined by the weights of `tensor`."""

    tensor: str  # TensorJob.id
    lower: str  # module whose output channels are the tensor's inputs
    upper: str  # module whose output channels are the tensor's outputs
    n_out: int = 8
    n_in: int = 8
    n_directions: int = 3  # output neurons shown in the spatial-position view


@dataclass
class Recipe:
    tensors: list[TensorJob]
    first_layer: str | None
    context: list[ContextJob] = field(default_factory=list)
    image_size: int = 224
    photo_size: int | None = None  # photos are resized to this shorter side for dataset examples


def _convs(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def lab_recipe(model: nn.Module) -> Recipe:
    convs = _convs(model)
    tensors = [TensorJob(n, label=n) for n in convs]
    return Recipe(
        tensors=tensors,
        first_layer=convs[0],
        context=[ContextJob(tensor=convs[-1], lower=convs[-2], upper=convs[-1])],
        image_size=32,
        photo_size=128,
    )


def efficientnet_recipe(model: nn.Module) -> Recipe:
    """Every MBConv block collapsed to one expanded weight (1x1 -> depthwise -> 1x1 hides space, expansion shows it)."""
    blocks = sorted({int(n.split(".")[1]) for n, _ in model.named_modules() if n.startswith("_blocks.")})
    tensors = [TensorJob("_conv_stem", label="stem")]
    for i in blocks:
        lower = "_bn0" if i == 0 else f"_blocks.{i - 1}"  # stem output
        tensors.append(TensorJob(f"_blocks.{i}", source=lower, label=f"block {i}"))
    # Two blocks at once: the support grows (3x3 and 5x5 depthwise kernels compose to 7x7).
    tensors.append(TensorJob("_blocks.4", source="_blocks.2", label="blocks 3-4"))
    return Recipe(
        tensors=tensors,
        first_layer="_conv_stem",
        # 5x5 kernels: 25 positions per neuron in the spatial view, so two neurons keep the CPU budget.
        # Block 3 has no residual connection (stride 2), so its expanded weights are all learned structure.
        context=[ContextJob(tensor="_blocks.2->_blocks.3", lower="_blocks.2", upper="_blocks.3", n_directions=2)],
        image_size=224,
        photo_size=224,
    )


def inceptionv1_recipe(model: nn.Module) -> Recipe:
    tensors = [
        TensorJob("conv1.conv", label="conv1"),
        TensorJob("conv3.conv", label="conv3"),
        TensorJob("inception4d.branch3.1.conv", label="mixed4d 3x3 (torchvision's '5x5')"),
        TensorJob("inception5b.branch2.1.conv", label="mixed5b 3x3"),
        TensorJob("inception5b.branch3.1.conv", label="mixed5b '5x5'"),
        TensorJob("inception3b", source="inception3a", label="mixed3a -> mixed3b"),
        TensorJob("inception3b", source="maxpool2", label="maxpool2 -> mixed3b"),
    ]
    return Recipe(
        tensors=tensors,
        first_layer="conv1.conv",
        context=[ContextJob(tensor="inception3a->inception3b", lower="inception3a", upper="inception3b")],
        image_size=224,
        photo_size=224,
    )


def generic_recipe(model: nn.Module, image_size: int = 32) -> Recipe:
    """Bring-your-own models: every conv weight; context on the last two convs."""
    convs = _convs(model)
    context = [ContextJob(tensor=convs[-1], lower=convs[-2], upper=convs[-1])] if len(convs) > 1 else []
    return Recipe([TensorJob(n, label=n) for n in convs], first_layer=convs[0] if convs else None,
                  context=context, image_size=image_size, photo_size=max(4 * image_size, 96))


def recipe_for(name: str, model: nn.Module, image_size: int | None = None) -> Recipe:
    if name.startswith("lab-"):
        return lab_recipe(model)
    if name == "efficientnet-lite0":
        return efficientnet_recipe(model)
    if name == "inceptionv1":
        return inceptionv1_recipe(model)
    return generic_recipe(model, image_size or 32)
