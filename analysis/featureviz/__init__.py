"""Feature visualization (Olah et al. 2017, Lucid style) on the CPU: batched, deterministic, cached as PNG.

param.py      Fourier-space, colour-decorrelated image parameterization
transform.py  transformation robustness (pad, jitter, scale, rotate) as one affine resampling
objectives.py channel and direction objectives, one target per image of the batch
hooks.py      capturing a named layer's output (and stopping the forward pass there)
render.py     the optimisation loop
cache.py      PNG + JSON cache and manifest
"""
from .cache import (QUALITY_PRESETS, cached_visualize, cached_visualize_directions,
                    png_bytes, read_manifest, resolve_quality)
from .render import optimize, visualize, visualize_directions

__all__ = ["QUALITY_PRESETS", "cached_visualize", "cached_visualize_directions", "optimize",
           "png_bytes", "read_manifest", "resolve_quality", "visualize", "visualize_directions"]
