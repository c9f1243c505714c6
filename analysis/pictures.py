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
