"""Transformation robustness (Lucid's `standard_transforms`): pad, jitter, random scale, random rotation, jitter.

An image that only works at one exact pixel alignment is an adversarial pattern, not a feature; optimising the
expected objective over small random transformations removes most high-frequency artefacts (Olah et al. 2017).
Every image in the batch gets its own transformation, drawn from its own RNG stream, and all of them are folded
into one affine resampling (one `grid_sample` call per step instead of five ops).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

PAD_VALUE = 0.5  # Lucid pads with mid-gray.
MAX_SCALED = 128  # pictures larger than this get Lucid's transforms in pixels, unscaled


@dataclass(frozen=True)
class TransformSpec:
    """Lucid's standard transforms for a 128 px image, scaled to `size` pixels."""

    pad: int
    jitter1: int
    jitter2: int
    scales: tuple[float, ...]
    angles: tuple[float, ...]

    @classmethod
    def standard(cls, size: int) -> "TransformSpec":
        """pad 12, jitter 8, scale 0.9..1.1, rotate -10..10 deg (zero weighted x6), jitter 4 -- at 128 px; shrunk
        for smaller pictures, but never grown past Lucid's own pixel amounts: a 224 px picture shaken 1.75x as far
        reached 0.82x Lucent's activation on EfficientNet-Lite0 `_blocks.10`, 0.88x with Lucid's amounts
        (bench/README.md, featureviz_vs_lucent)."""
        f = min(size, MAX_SCALED) / 128.0
        return cls(
            pad=max(1, round(12 * f)),
            jitter1=max(1, round(8 * f)),
            jitter2=max(1, round(4 * f)),
            scales=tuple(1 + (i - 5) / 50.0 for i in range(11)),
            angles=tuple(float(a) for a in list(range(-10, 11)) + 5 * [0]),
        )

    def output_size(self, size: int) -> int:
        """Side of the transformed image the model sees."""
        return size + 2 * self.pad - self.jitter1 - self.jitter2


def transform_rngs(seeds: list[tuple[int, int]]) -> list[np.random.Generator]:
    """One transformation RNG per image, independent of the stream that drew its initial spectrum."""
    return [np.random.Generator(np.random.PCG64(np.random.SeedSequence([*s, 1]))) for s in seeds]


def sample_affines(rngs: list[np.random.Generator], spec: TransformSpec, size: int) -> torch.Tensor:
    """Draw one transformation per image -> affine matrices [n, 2, 3] for `F.affine_grid` (align_corners=False).

    In pixels about the image centre: input = R(angle) / scale @ output + shift, where the shift is the offset of
    two random crops (jitter) from their centred position.
    """
    padded = size + 2 * spec.pad
    out = spec.output_size(size)
    thetas = np.empty((len(rngs), 2, 3), dtype=np.float64)
    for i, rng in enumerate(rngs):
        d1 = rng.integers(0, spec.jitter1 + 1, size=2) - spec.jitter1 / 2.0
        scale = spec.scales[rng.integers(len(spec.scales))]
        angle = np.deg2rad(spec.angles[rng.integers(len(spec.angles))])
        d2 = rng.integers(0, spec.jitter2 + 1, size=2) - spec.jitter2 / 2.0
        c, s = np.cos(angle), np.sin(angle)
        lin = np.array([[c, -s], [s, c]]) / scale
        shift = d1 + lin @ d2  # second crop happens after scale/rotation, so it moves in the rotated frame
        thetas[i, :, :2] = lin * (out / padded)  # normalised output coords -> normalised input coords
        thetas[i, :, 2] = shift[::-1] * 2.0 / padded  # (dy, dx) drawn; affine_grid wants (x, y)
    return torch.from_numpy(thetas.astype(np.float32))


def apply(images: torch.Tensor, thetas: torch.Tensor, spec: TransformSpec) -> torch.Tensor:
    """images [n, C, S, S] -> transformed [n, C, O, O] with O = spec.output_size(S)."""
    n, c, s, _ = images.shape
    padded = F.pad(images, (spec.pad,) * 4, value=PAD_VALUE)
    o = spec.output_size(s)
    grid = F.affine_grid(thetas, [n, c, o, o], align_corners=False)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=False)
