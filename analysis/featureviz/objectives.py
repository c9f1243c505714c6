"""Objectives: per-image scores computed from a layer's activations [n, C, h, w], one target per image.

The loss is minus the sum of the scores; because images do not interact (eval mode, no batch statistics),
each image's gradient depends only on its own target, so a batch optimises n neurons at once.
"""
from __future__ import annotations

import torch

POSITIONS = ("mean", "center")


def as_nchw(act: torch.Tensor) -> torch.Tensor:
    """Treat a fully-connected activation [n, C] as a 1x1 feature map [n, C, 1, 1]."""
    if act.dim() == 2:
        return act[:, :, None, None]
    if act.dim() != 4:
        raise ValueError(f"expected activations [n, C] or [n, C, h, w], got shape {tuple(act.shape)}")
    return act


def channel(act: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """Mean activation of image i's own channel channels[i] -> [n]."""
    act = as_nchw(act)
    idx = torch.arange(act.shape[0], device=act.device)
    return act[idx, channels].mean(dim=(1, 2))


def direction(act: torch.Tensor, directions: torch.Tensor, position: str = "mean") -> torch.Tensor:
    """Dot product of image i's activation vector with directions[i] [n, C] -> [n].

    position="mean" averages the dot product over all positions (Lucid's `direction`); "center" takes it at the
    central position only (Lucid's `direction_neuron`), which suits a weight kernel's spatially local vector.
    """
    act = as_nchw(act)
    if directions.shape != act.shape[:2]:
        raise ValueError(f"directions {tuple(directions.shape)} do not match activations {tuple(act.shape[:2])}")
    if position == "mean":
        return torch.einsum("nchw,nc->n", act, directions) / (act.shape[2] * act.shape[3])
    if position == "center":
        h, w = act.shape[2] // 2, act.shape[3] // 2
        return (act[:, :, h, w] * directions).sum(dim=1)
    raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
