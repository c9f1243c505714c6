"""Feature visualization (Olah et al. 2017, Lucid style) on the CPU: batched, deterministic, cached as PNG.

param.py      Fourier-space, colour-decorrelated image parameterization
transform.py  transformation robustness (pad, jitter, scale, rotate) as one affine resampling
objectives.py channel and direction objectives, one target per image of the batch
canvas.py     the side a layer's pictures are rendered at (its receptive field, capped) and gray or RGB
hooks.py      capturing a named layer's output (and stopping the forward pass there)
render.py     the optimisation loop
fold.py       batch norms folded into their convs for the loop (the same function, less CPU)
cache.py      PNG + JSON cache and manifest
"""
from .cache import (QUALITY_PRESETS, cached_visualize, cached_visualize_directions,
                    png_bytes, read_manifest, resolve_quality)
from .canvas import picture_channels, receptive_field, render_size
from .render import optimize, visualize, visualize_directions

__all__ = ["QUALITY_PRESETS", "cached_visualize", "cached_visualize_directions", "optimize",
           "picture_channels", "png_bytes", "read_manifest", "receptive_field", "render_size", "resolve_quality",
           "visualize", "visualize_directions"]
