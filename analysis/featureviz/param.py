"""Image parameterization for feature visualization: Lucid's `fft_image` + `to_valid_rgb(decorrelate=True)`.

The optimised variable is a (real, imaginary) spectrum per image and colour channel. Scaling it by ~1/f makes
gradient steps equally large at every spatial frequency, so the optimiser does not spend itself on high-frequency
noise (Olah et al. 2017, "Feature Visualization", section "Preconditioning and Parameterization"). For RGB the
channels are decorrelated by the square root of the ImageNet colour covariance, then squashed into [0, 1] by a
sigmoid.
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
DECAY_POWER = 1.0   # 1/f^decay_power spectrum scaling.


def rfft2d_freqs(h: int, w: int) -> np.ndarray:
    """Frequency magnitude of each bin of a real 2-D FFT of an [h, w] image -> [h, w // 2 + 1]."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fx * fx + fy * fy)


def spectrum_scale(h: int, w: int, decay_power: float = DECAY_POWER) -> torch.Tensor:
    """Per-bin 1/f scale [h, w // 2 + 1]; the DC bin is clamped to 1/max(h, w) like Lucid, times sqrt(h*w)."""
    freqs = rfft2d_freqs(h, w)
    scale = 1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** decay_power
    scale = scale * np.sqrt(h * w)
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
