"""Image parameterization for feature visualization: Lucid's `fft_image` + `to_valid_rgb(decorrelate=True)`.

The optimised variable is a (real, imaginary) spectrum per image and colour channel, scaled by 1/f^DECAY_POWER
(Olah et al. 2017, "Feature Visualization", section "Preconditioning and Parameterization"). For RGB the
channels are decorrelated by the square root of the ImageNet colour covariance, then squashed into [0, 1] by a
sigmoid.

Why 1.75 and not Lucid's 1: Adam moves every spectral coefficient by about `lr` per step whatever the size of its
gradient, so the picture's amplitude spectrum follows the scale: a 1/f scale gives 1/f noise, 17% of its power above
0.25 cycles/px at 72 px and 29% at 32 px, where photo crops of those sizes at an ImageNet network's scale have 6%
and 11% (quality.py). On EfficientNet-Lite0 (128 steps at lr 0.1) decay 1 gave 2.8-4x the photos' share, 1.5 gave
1.2-1.7x, 1.75 gave 0.6-1.2x for the same activation within 10% (bench/README.md, featureviz_vs_lucent); 2 washed
large areas out to white. The scale is pinned to Lucid's at PIVOT cycles/px (a feature's scale in pixels, whatever the
image size): normalising its total instead left 224 px pictures gray, their range spent on image-sized blobs.
"""
from __future__ import annotations

import numpy as np
import torch

# Lucid's `color_correlation_svd_sqrt` (square root of ImageNet's RGB covariance), columns normalised to max norm 1.
COLOR_CORRELATION_SVD_SQRT = np.asarray(
    [[0.26, 0.09, 0.02],
     [0.27, 0.00, -0.05],
     [0.27, -0.09, 0.03]], dtype=np.float32)
COLOR_CORRELATION = COLOR_CORRELATION_SVD_SQRT / np.max(np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0))

INIT_SD = 0.01      # Lucid's default spectrum standard deviation.
DECAY_POWER = 1.75  # 1/f^decay_power spectrum scaling (Lucid: 1); see the module docstring.
PIVOT = 0.1         # cycles/px where the scale equals Lucid's 1/f scale: finer detail is damped, coarser boosted.


def rfft2d_freqs(h: int, w: int) -> np.ndarray:
    """Frequency magnitude of each bin of a real 2-D FFT of an [h, w] image -> [h, w // 2 + 1]."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fx * fx + fy * fy)


def spectrum_scale(h: int, w: int, decay_power: float = DECAY_POWER, pivot: float = PIVOT) -> torch.Tensor:
    """Per-bin scale [h, w // 2 + 1]: sqrt(h*w) / f * (f / pivot)^(1 - decay_power), with f clamped to at least
    1/max(h, w) (the DC bin, like Lucid). decay_power=1 is Lucid's scale at any pivot."""
    freqs = np.maximum(rfft2d_freqs(h, w), 1.0 / max(h, w))
    scale = np.sqrt(h * w) / freqs * (freqs / pivot) ** (1.0 - decay_power)
    return torch.from_numpy(scale.astype(np.float32))


def init_spectrum(seeds: list[tuple[int, int]], channels: int, size: int, sd: float = INIT_SD) -> torch.Tensor:
    """Random spectra [n, channels, size, size // 2 + 1, 2] (real, imag); image i depends only on seeds[i].

    seeds[i] is (global seed, neuron key), e.g. (0, channel index).

    numpy's PCG64 is used (not torch's global RNG) so each neuron's start point is independent of which other
    neurons share its batch and of torch's RNG state.
    """
    bins = size // 2 + 1
    out = np.empty((len(seeds), channels, size, bins, 2), dtype=np.float32)
    for i, s in enumerate(seeds):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([*s, 0])))
        out[i] = rng.normal(0.0, sd, size=(channels, size, bins, 2))
    return torch.from_numpy(out)


def spectrum_to_image(spectrum: torch.Tensor, scale: torch.Tensor, decorrelate: bool) -> torch.Tensor:
    """Spectrum [n, C, H, W//2+1, 2] -> image [n, C, H, W] in (0, 1).

    `decorrelate` applies the ImageNet colour-correlation matrix (RGB only) before the sigmoid.
    """
    n, c, h, _, _ = spectrum.shape
    spec = torch.view_as_complex(spectrum.contiguous()) * scale
    img = torch.fft.irfft2(spec, s=(h, h), norm="backward")
    img = img / 4.0  # Lucid's constant: keeps the initial image near sigmoid's linear range.
    if decorrelate:
        if c != 3:
            raise ValueError(f"colour decorrelation needs 3 channels, got {c}")
        m = torch.from_numpy(COLOR_CORRELATION).to(img.device)
        img = torch.einsum("ij,njhw->nihw", m, img)
    return torch.sigmoid(img)
