"""The canvas a neuron's feature visualization is rendered on: its side and its channels.

Side: large enough to cover the neuron's receptive field, no larger.

The picture is optimised at the model's own scale (one picture pixel is one input pixel), so a side that covers the
receptive field shows everything the neuron can see; a larger side adds only more of the same texture, at a cost
that grows with the square of the side. Sides are kept between MIN_SIZE and a cap (the quality preset's `size`, at
most MAX_SIZE: deep layers whose field spans the whole input are shown at the input size of an ImageNet network).

The receptive field is measured, not derived from kernel sizes (analysis/examples.py does the same for dataset
examples): the bounding box of the nonzero input gradient of the layer's central position, so padding conventions,
depthwise convs, pooling and residual paths need no special cases.

Channels: gray for a model that sees gray images (one input channel, or gray repeated to RGB like the banding lab's
digits): colour in its pictures would be colour the model never saw, free for the optimiser to saturate.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .hooks import frozen, layer_activations
from .render import model_channels

MAX_SIZE = 224  # the cap of every preset: an ImageNet network's input side
MIN_SIZE = 32   # below this a picture shows too little of the texture to read

_MEMO: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Field:
    """A layer's receptive field measured on a `probe`-pixel input: `size` pixels (at least that when `capped`:
    the field reached the probe's border), `stride` input pixels between neighbouring positions."""

    size: int
    stride: int
    probe: int
    capped: bool


def picture_channels(info: dict) -> int:
    """1 (gray) or 3 (RGB) for a model described by `info` (analysis/loading.py): gray when its input has one
    channel or its facts say it was trained on gray images repeated to RGB (`gray_input`)."""
    return 1 if int(info.get("input_channels", 3)) == 1 or info.get("gray_input") else 3


def receptive_field(model: nn.Module, layer: str, *, channels_in: int = 3, limit: int = MAX_SIZE) -> Field:
    """`layer`'s receptive field, measured exactly up to `limit` pixels (a wider one comes back with size >= limit).

    Probes grow from 64 px, doubling while the field reaches the probe's border, up to `limit` (rounded up to 32),
    so an early layer costs one small forward and backward pass. Memoised per model object and layer (the weights
    do not change a field's extent).
    """
    memo = _MEMO.setdefault(model, {})
    key = (layer, channels_in)
    field = memo.get(key)
    top = 32 * math.ceil(limit / 32)
    while field is None or (field.capped and field.probe < top):
        field = _measure(model, layer, channels_in, 64 if field is None else min(2 * field.probe, top))
        memo[key] = field
    return field


def render_size(model: nn.Module, layer: str, *, cap: int = MAX_SIZE, channels_in: int = 3,
                input_size: int | None = None, minimum: int = MIN_SIZE) -> int:
    """The side (pixels) to render `layer`'s feature visualizations at: its receptive field rounded up to a
    multiple of its stride (at least 8), then limited to [minimum, min(cap, MAX_SIZE)]. A model trained on
    small images (`input_size`, e.g. 28 px digits) is rendered at most at that size (but at least `minimum`)."""
    upper = min(int(cap), MAX_SIZE)
    if input_size is not None:
        upper = min(upper, max(minimum, int(input_size)))
    upper = max(upper, minimum)
    field = receptive_field(model, layer, channels_in=channels_in, limit=upper)
    if field.capped:  # the field reaches past a probe of the largest side allowed
        return upper
    step = max(8, field.stride)
    return int(min(upper, max(minimum, step * math.ceil(field.size / step))))


def _measure(model: nn.Module, layer: str, channels_in: int, probe: int) -> Field:
    # One random input: the field's outermost pixels reach the centre through many paths, not all of them off.
    rng = np.random.Generator(np.random.PCG64(0))
    shape = (1, model_channels(model, channels_in), probe, probe)
    x = torch.from_numpy(rng.random(shape, dtype=np.float32)).requires_grad_(True)
    with frozen(model):
        act = layer_activations(model, layer, x)
        if act.dim() != 4:  # a fully-connected layer sees the whole input
            return Field(probe, probe, probe, True)
        act[:, :, act.shape[2] // 2, act.shape[3] // 2].sum().backward()
    support = np.argwhere(x.grad.abs().sum(dim=(0, 1)).numpy() > 0)
    if len(support) == 0:  # a dead layer: nothing to cover
        return Field(1, max(1, round(probe / act.shape[2])), probe, False)
    lo, hi = support.min(0), support.max(0)
    capped = bool(lo.min() == 0 or hi.max() == probe - 1)
    return Field(int((hi - lo + 1).max()), max(1, round(probe / act.shape[2])), probe, capped)
