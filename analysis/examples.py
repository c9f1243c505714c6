"""Dataset examples: for each channel, the photo crops that activate it most.

Each photo is run through the model once (photos of one shape batched together); the channel's activation at
every position of the layer's feature map is a candidate, and the winning positions are mapped back to crops
of the photo centred on that position's receptive field. This is equivalent to sliding a crop window over the
photo but costs one forward pass per photo instead of one per window.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from analysis.errors import AnalysisError
from analysis.featureviz.hooks import deterministic, frozen, layer_activations

PAD_VALUE = 0.5  # crops reaching past a photo's border are filled with mid-gray
LUMA = np.asarray([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Example:
    """One dataset example: crop = photo[y:y+crop, x:x+crop] (gray-padded outside), centred on (fy, fx)."""

    photo: str
    y: int
    x: int
    activation: float
    fy: int
    fx: int
    crop: np.ndarray  # float32 [crop, crop, 3] in [0, 1]


def resize_photo(photo: np.ndarray, short_side: int) -> np.ndarray:
    """[H, W, 3] -> shorter side = short_side (antialiased bilinear; deterministic torch op)."""
    h, w = photo.shape[:2]
    f = short_side / min(h, w)
    size = (max(1, round(h * f)), max(1, round(w * f)))
    t = torch.tensor(np.asarray(photo, dtype=np.float32)).permute(2, 0, 1)[None]  # a copy: photos may be read-only
    out = F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).clamp(0, 1).numpy()


@dataclass(frozen=True)
class ReceptiveField:
    """Where a feature-map position looks in the input: centre(f) = offset + f * stride, `size` pixels wide."""

    size: int
    stride: tuple[float, float]
    offset: tuple[float, float]

    def centre(self, fy: int, fx: int) -> tuple[float, float]:
        return self.offset[0] + fy * self.stride[0], self.offset[1] + fx * self.stride[1]


def receptive_field(model: nn.Module, layer: str, *, size: int = 128, channels_in: int = 3) -> ReceptiveField:
    """Measure `layer`'s receptive field on a size x size probe: the bounding box of the nonzero input gradient of
    the central position (summed over channels, union over 4 random images so dead ReLUs do not hide inputs).

    Measured rather than derived from kernel sizes, so it works for any architecture (padding conventions,
    depthwise convs, pooling); a field larger than the probe is capped at `size`.
    """
    rng = np.random.Generator(np.random.PCG64(0))
    x = torch.from_numpy(rng.random((4, channels_in, size, size), dtype=np.float32)).requires_grad_(True)
    with frozen(model):
        act = layer_activations(model, layer, x)
        if act.dim() != 4:
            return ReceptiveField(size, (float(size), float(size)), ((size - 1) / 2, (size - 1) / 2))
        cy, cx = act.shape[2] // 2, act.shape[3] // 2
        act[:, :, cy, cx].sum().backward()
    support = np.argwhere(x.grad.abs().sum(dim=(0, 1)).numpy() > 0)
    stride = (size / act.shape[2], size / act.shape[3])
    if len(support) == 0:  # a dead layer: fall back to the geometric centre of each cell
        return ReceptiveField(1, stride, ((stride[0] - 1) / 2, (stride[1] - 1) / 2))
    lo, hi = support.min(0), support.max(0)
    extent = int((hi - lo + 1).max())
    mid = (lo + hi) / 2.0
    return ReceptiveField(extent, stride, (float(mid[0] - cy * stride[0]), float(mid[1] - cx * stride[1])))


def dataset_examples(model: nn.Module, layer: str, channels: Sequence[int],
                     photos: Sequence[tuple[str, np.ndarray]], *, crop: int | None = None,
                     stride: float | None = None, top: int = 8, per_photo: int = 1,
                     photo_size: int | None = None, channels_in: int = 3, batch: int = 8,
                     num_threads: int | None = 2) -> list[list[Example]]:
    """For each of `channels`, the `top` strongest (photo, position) activations of `layer` as crops.

    photos: (name, float32 [H, W, 3] in [0, 1]); with `photo_size` each is first resized so its shorter side
    is photo_size (coordinates and crops then refer to the resized photo).
    crop: crop side in input pixels (default: the layer's measured receptive field, capped by the smallest photo).
    stride: input pixels per feature-map step (default: measured with the receptive field).
    per_photo: at most this many examples from one photo; further picks from the same photo must be at least
    half a crop apart, so they are not near-duplicates.
    Ties are broken by photo order, then y, then x, so the result is deterministic.
    Returns one list per channel, strongest first, each of length <= top.
    """
    if top < 1 or per_photo < 1:
        raise ValueError(f"top and per_photo must be >= 1, got top={top} per_photo={per_photo}")
    if not photos:
        raise AnalysisError("dataset_examples: no photos given")
    prepared = [(name, _check_photo(name, p) if photo_size is None else resize_photo(_check_photo(name, p),
                                                                                      photo_size))
                for name, p in photos]
    chans = [int(c) for c in channels]
    smallest = min(min(p.shape[:2]) for _, p in prepared)
    rf = receptive_field(model, layer, size=max(32, min(smallest, 224)), channels_in=channels_in)
    if stride is not None:
        rf = ReceptiveField(rf.size, (float(stride), float(stride)), rf.offset)
    crop = min(rf.size, smallest) if crop is None else crop
    maps = _activation_maps(model, layer, chans, prepared, channels_in, batch, num_threads)
    radius = 0.0 if per_photo == 1 else crop / 2 / max(rf.stride)
    result = []
    for k in range(len(chans)):
        picks = _top_positions([m[k] for m in maps], top, per_photo, radius)
        examples = []
        for i, fy, fx, value in picks:
            name, photo = prepared[i]
            cy, cx = rf.centre(fy, fx)
            y = int(np.floor(cy - (crop - 1) / 2 + 0.5))  # crop centred on the receptive field's centre
            x = int(np.floor(cx - (crop - 1) / 2 + 0.5))
            y, x = _clamp(y, photo.shape[0], crop), _clamp(x, photo.shape[1], crop)
            examples.append(Example(name, y, x, value, fy, fx, _cut(photo, y, x, crop)))
        result.append(examples)
    return result


def _check_photo(name: str, photo: np.ndarray) -> np.ndarray:
    arr = np.asarray(photo, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise AnalysisError(f"photo {name!r}: expected float [H, W, 3], got shape {arr.shape}")
    return arr


def _activation_maps(model: nn.Module, layer: str, chans: list[int], photos: list[tuple[str, np.ndarray]],
                     channels_in: int, batch: int, num_threads: int | None) -> list[np.ndarray]:
    """Per photo, activations of the selected channels [len(chans), h, w] (float32)."""
    maps: list[np.ndarray | None] = [None] * len(photos)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, (_, p) in enumerate(photos):
        by_shape.setdefault(p.shape, []).append(i)
    idx = torch.as_tensor(chans, dtype=torch.long)
    with deterministic(num_threads), frozen(model), torch.no_grad():
        for members in by_shape.values():
            for s in range(0, len(members), batch):
                group = members[s:s + batch]
                arr = np.stack([photos[i][1] for i in group])
                if channels_in == 1:
                    arr = (arr @ LUMA)[..., None]
                x = torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
                act = layer_activations(model, layer, x)
                if act.dim() != 4:
                    raise AnalysisError(f"layer {layer!r} has no spatial map (shape {tuple(act.shape)})")
                if chans and (max(chans) >= act.shape[1] or min(chans) < 0):
                    raise ValueError(f"channels must be in [0, {act.shape[1]}) for {layer!r}, got {chans}")
                sel = act[:, idx].numpy()
                for j, i in enumerate(group):
                    maps[i] = sel[j]
    return maps  # type: ignore[return-value]


def _top_positions(maps: list[np.ndarray], top: int, per_photo: int,
                   radius: float) -> list[tuple[int, int, int, float]]:
    """Best (photo i, y, x, activation) over all photos, at most per_photo per photo; picks within one photo
    must be more than `radius` feature cells apart (Chebyshev). Best first; ties by photo, then raster order.

    Picks in one photo do not depend on other photos, so each photo is scanned alone and the results merged.
    """
    cand: list[tuple[float, int, int, int]] = []
    for i, m in enumerate(maps):
        flat = m.reshape(-1)
        if per_photo == 1:
            order = [int(np.argmax(flat))]  # first maximum = raster-order tie-break
        else:
            order = np.argsort(-flat, kind="stable")
        mine: list[tuple[int, int]] = []
        for p in order:
            fy, fx = divmod(int(p), m.shape[1])
            if any(max(abs(fy - ty), abs(fx - tx)) <= radius for ty, tx in mine):
                continue
            mine.append((fy, fx))
            cand.append((-float(flat[p]), i, fy, fx))
            if len(mine) == min(per_photo, top):
                break
    cand.sort()
    return [(i, fy, fx, -neg) for neg, i, fy, fx in cand[:top]]


def _clamp(start: int, length: int, crop: int) -> int:
    """Shift a crop window inside the photo when the photo is big enough; else centre it (padding both sides)."""
    if length >= crop:
        return min(max(start, 0), length - crop)
    return -((crop - length) // 2)


def _cut(photo: np.ndarray, y: int, x: int, crop: int) -> np.ndarray:
    """photo[y:y+crop, x:x+crop] with PAD_VALUE outside the photo -> float32 [crop, crop, 3]."""
    out = np.full((crop, crop, photo.shape[2]), PAD_VALUE, dtype=np.float32)
    y0, x0 = max(y, 0), max(x, 0)
    y1, x1 = min(y + crop, photo.shape[0]), min(x + crop, photo.shape[1])
    out[y0 - y:y1 - y, x0 - x:x1 - x] = photo[y0:y1, x0:x1]
    return out
