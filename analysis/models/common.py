"""Pieces shared by the model zoo: in-module input normalization and conv-layer inventories."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

# torchvision's ImageNet preprocessing (every IMAGENET1K_V1 weight file of the zoo was trained with it).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """(x - mean) / std per channel, for inputs [B, C, H, W] in [0, 1].

    Buffers are non-persistent so a model's state_dict keys stay exactly those of its checkpoint.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


def imagenet_normalize(enabled: bool) -> Normalize | None:
    """ImageNet normalization for a torchvision-layout model, or None when the caller feeds normalized input
    (the float64 reference forward pass calls the architectures without it)."""
    return Normalize(IMAGENET_MEAN, IMAGENET_STD) if enabled else None


def conv_kind(conv: nn.Conv2d) -> str:
    """"depthwise" (one input channel per group, groups == in_channels > 1), "pointwise" (1x1), else "conv"."""
    if conv.groups > 1 and conv.groups == conv.in_channels:
        return "depthwise"
    if tuple(conv.kernel_size) == (1, 1):
        return "pointwise"
    return "conv"


def conv_layers(model: nn.Module) -> list[dict]:
    """Every Conv2d as {name, shape [out, in/groups, kh, kw], kind}, in registration order.

    All zoo models register their modules in forward order, so this is forward order too.
    """
    return [
        {"name": name, "shape": list(m.weight.shape), "kind": conv_kind(m)}
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d)
    ]


def parameter_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
