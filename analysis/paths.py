"""Where the analysis side keeps its cache (trained lab models, JSON results)."""
from __future__ import annotations

import os
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
