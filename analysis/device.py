"""Which torch device feature visualization and expanded weights run on: `auto` (CUDA when present), `cpu`, `cuda`.

The device never enters a cache key: results on CUDA equal the CPU's within the tolerance in bench/README.md
(bench/gpu_check.py measures it), so a cache filled on a GPU machine serves a CPU-only one and back.
"""
from __future__ import annotations

import torch

from analysis.core.errors import AnalysisError
from analysis.core.spec import DEVICES as CHOICES


def resolve(choice: str | None = "auto") -> tuple[str, str | None]:
    """(device, note): 'cpu' or 'cuda'; a note for the build's output when `auto` finds no GPU, else None."""
    choice = choice or "auto"
    if choice not in CHOICES:
        raise AnalysisError(f"analysis device {choice!r} is not one of {', '.join(CHOICES)}")
    available = torch.cuda.is_available()
    if choice == "cuda" and not available:
        raise AnalysisError("analysis device 'cuda' was asked for, but torch sees no CUDA GPU "
                            f"(torch {torch.__version__}; use --device auto or cpu)")
    if choice == "auto":
        return ("cuda", None) if available else ("cpu", "no CUDA GPU found, running on the CPU")
    return choice, None


def exact_math(device: str) -> None:
    """On CUDA, full float32 matmuls and convolutions (no TF32), so results stay within the CPU's tolerance."""
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
