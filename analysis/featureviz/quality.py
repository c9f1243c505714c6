"""How noisy a picture is: the share of its spectral power at high spatial frequencies, and the same for photos.

A feature visualization "worth looking at" has about the spectrum of a photo of its size: pixel-scale stripes and
checkerboards put power near the Nyquist frequency that photos at a network's scale do not have. Pure numpy on
arrays, used by the tests and bench/featureviz_vs_lucent.py.
"""
from __future__ import annotations

import numpy as np

CUTOFF = 0.25  # cycles/px: half the Nyquist frequency
PHOTO_SCALE = 224  # photos are seen with their shorter side at an ImageNet network's input size
FLAT = 0.01  # crops with less pixel standard deviation (sky, black borders) have no spectrum worth comparing


def high_frequency_share(image: np.ndarray, cutoff: float = CUTOFF) -> float:
    """Share of the power spectrum of `image` ([H, W] or [H, W, C]; the mean of each channel removed, channels
    summed) at radial frequencies above `cutoff` cycles/px. 0 for a flat image."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 2:
        x = x[:, :, None]
    h, w = x.shape[:2]
    x = x - x.mean(axis=(0, 1))
    power = (np.abs(np.fft.fft2(x, axes=(0, 1))) ** 2).sum(axis=-1)
    freq = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    total = power.sum()
    return float(power[freq > cutoff].sum() / total) if total > 0 else 0.0


def photo_crops(size: int, per_photo: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Random size x size crops of every bundled photo (analysis.core.data), each photo first resized (antialiased) so
    its shorter side is PHOTO_SCALE px; flat crops are left out. Deterministic for a seed."""
    from PIL import Image

    from analysis.core.data import load_photos

    if not 1 <= size <= PHOTO_SCALE:
        raise ValueError(f"crop size must be in [1, {PHOTO_SCALE}], got {size}")
    rng = np.random.Generator(np.random.PCG64(seed))
    crops = []
    for _name, photo in load_photos():
        h, w = photo.shape[:2]
        f = PHOTO_SCALE / min(h, w)
        pil = Image.fromarray((np.asarray(photo) * 255).round().astype(np.uint8))
        scaled = np.asarray(pil.resize((round(w * f), round(h * f)), Image.LANCZOS), dtype=np.float32) / 255
        sh, sw = scaled.shape[:2]
        for _ in range(per_photo):
            y, x = rng.integers(0, sh - size + 1), rng.integers(0, sw - size + 1)
            crop = scaled[y:y + size, x:x + size]
            if crop.std() >= FLAT:
                crops.append(crop)
    return crops


def photo_high_frequency_share(size: int, per_photo: int = 16, seed: int = 0) -> float:
    """Median high-frequency share of photo_crops(size): the reference a feature visualization of that size is
    held to."""
    return float(np.median([high_frequency_share(c) for c in photo_crops(size, per_photo, seed)]))
