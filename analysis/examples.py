"""Geometry of dataset examples: where a feature-map position looks in the input (its receptive field), and photos
resized deterministically. The examples themselves come from one pass over the images for every layer at once
(analysis/example_pass.py, driven by analysis/examples_stage.py); the earlier per-layer search with its own crops was
replaced by it (issue 20).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

PAD_VALUE = 0.5  # crops reaching past a photo's border are filled with mid-gray


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
