"""Pictures that are data: float images in [0, 1] -> deterministic PNG bytes (no metadata, no timestamps)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def png_bytes(image: np.ndarray, max_size: int | None = None) -> bytes:
    """[H, W], [H, W, 1] (gray) or [H, W, 3] (RGB) floats in [0, 1] -> PNG bytes, identical for identical input.

    max_size: downscale (Lanczos) so that neither side exceeds it, for pictures that only need to be looked at.
    """
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"expected an image [H, W], [H, W, 1] or [H, W, 3], got shape {np.shape(image)}")
    u8 = np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    img = Image.fromarray(u8, mode="L" if u8.ndim == 2 else "RGB")
    if max_size and max(img.size) > max_size:
        img = img.resize((min(img.width, max_size), min(img.height, max_size)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()


def filter_sprite(rgb: np.ndarray, scale: int = 8) -> np.ndarray:
    """[out, h, w, 3] filters -> one picture: a grid of filters, each upscaled, one grey pixel apart."""
    rgb = np.asarray(rgb, dtype=np.float32)
    n, h, w, _ = rgb.shape
    cols = int(np.ceil(np.sqrt(2 * n)))
    rows = int(np.ceil(n / cols))
    big = np.repeat(np.repeat(rgb, scale, axis=1), scale, axis=2)
    out = np.full((rows * (h * scale + 2), cols * (w * scale + 2), 3), 0.5, dtype=np.float32)
    for f in range(n):
        y, x = (f // cols) * (h * scale + 2), (f % cols) * (w * scale + 2)
        out[y:y + h * scale, x:x + w * scale] = big[f]
    return out
