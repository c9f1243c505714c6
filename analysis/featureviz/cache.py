"""PNG + JSON cache of feature visualizations and the manifest the article side reads.

Layout under `<cache_dir>/featureviz/`:
    <model>/<layer>/c<channel>-<key12>.png    the image (deterministic bytes: Pillow, no metadata)
    <model>/<layer>/c<channel>-<key12>.json   its record: key inputs + sha256 of the PNG (detects corruption)
    <model>/<layer>/d-<key12>.png/.json       direction visualizations (not in the manifest: no channel)
    manifest.json                             [{"model", "layer", "channel", "image", "quality", "sha256"}, ...]
The key hashes the code key of this module (analysis/core/codekey.py: the feature-visualization code it imports, by
content, and the libraries' versions), the model's key, layer, channel and every quality parameter, so a change to
any of them misses the cache instead of serving a stale picture; a change to other analysis code does not.

Bytes are reproducible for the same request (same channels, same batching). A channel rendered in a different
batch can differ by rounding noise (oneDNN picks batch-size-dependent kernels): at most a gray level or two.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from analysis.core import jsonio
from analysis.core.paths import inside, safe_component
from analysis.pictures import png_bytes  # noqa: F401  (part of this package's API)
from analysis.core.errors import AnalysisError
from analysis.cache import Entry
from analysis.core.codekey import code_key
from analysis.core.spec import DEFAULT_QUALITY, QUALITY_PRESETS

from .render import visualize, visualize_directions
from .budget import Budget

MANIFEST = "manifest.json"


def resolve_quality(quality: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """A preset name or a partial dict -> the full parameter dict (defaults filled in); unknown keys rejected."""
    if quality is None or isinstance(quality, str):
        name = quality or DEFAULT_QUALITY
        if name not in QUALITY_PRESETS:
            raise ValueError(f"unknown quality preset {name!r}; presets: {sorted(QUALITY_PRESETS)}")
        return dict(QUALITY_PRESETS[name])
    full = dict(QUALITY_PRESETS[DEFAULT_QUALITY])
    unknown = set(quality) - set(full)
    if unknown:
        raise ValueError(f"unknown quality parameters {sorted(unknown)}; allowed: {sorted(full)}")
    full.update(quality)
    return full


def _cache_key(**parts: Any) -> str:
    return jsonio.sha256_text(jsonio.dumps({"code": code_key(__name__), **parts}))


def _cache(record_path: Path, key: str) -> Entry:
    """A feature visualization's record (no schema field; its picture's sha256 under "sha256")."""
    return Entry(record_path, key, schema=None, png_field="sha256")


def cached_visualize(model: nn.Module, model_name: str, weights_sha256: str, layer: str, channels: Sequence[int],
                     cache_dir: str | Path, quality: Mapping[str, Any] | str | None = None, *,
                     channels_in: int = 3, batch: int = 32, num_threads: int | None = 2, device: str = "cpu",
                     budget: Budget | None = None) -> list[dict]:
    """Feature visualizations of `channels` of `layer`, computed only where the cache misses.

    Returns one manifest entry per channel, in the order given:
    {"model", "layer", "channel", "image" (relative to featureviz/), "quality", "sha256"}.
    Misses are rendered together in batches; the manifest is updated once at the end. With a `budget`, misses are
    rendered (in the order given) only while it lasts (cached ones count towards its total but are always served), and
    channels left without an image are left out of the result.
    The device is not part of the key (analysis/device.py).
    """
    q = resolve_quality(quality)
    root = Path(cache_dir) / "featureviz"
    folder = root / safe_component(model_name) / safe_component(layer)
    entries: dict[int, dict] = {}
    missing: list[tuple[int, Path, str]] = []
    for c in dict.fromkeys(int(c) for c in channels):  # unique, order kept
        key = _cache_key(kind="channel", weights=weights_sha256, layer=layer, channel=c, quality=q,
                         channels_in=channels_in)
        record_path = folder / f"c{c:04d}-{key[:12]}.json"
        record = _cache(record_path, key).get(picture=True)
        if record is None:
            missing.append((c, record_path, key))
        else:
            entries[c] = _entry(root, record_path, record)
    if budget is not None:
        budget.spend(len(entries))  # cached pictures are served free, but count towards the total
    while missing:
        n = len(missing) if budget is None else budget.allowed(min(batch, len(missing)))
        if n == 0:
            break
        part, missing = missing[:n], missing[n:]
        images = visualize(model, layer, [c for c, _, _ in part], size=q["size"], steps=q["steps"], lr=q["lr"],
                           seed=q["seed"], batch=batch, channels_in=channels_in, num_threads=num_threads,
                           device=device)
        if budget is not None:
            budget.spend(n)
            budget.rendered += n
        for (c, record_path, key), image in zip(part, images):
            record = _cache(record_path, key).put(png=png_bytes(image), record={
                "key": key, "model": model_name, "layer": layer, "channel": c,
                "quality": q, "weights_sha256": weights_sha256, "channels_in": channels_in})
            entries[c] = _entry(root, record_path, record)
    result = [entries[int(c)] for c in channels if int(c) in entries]
    update_manifest(root, list(entries.values()))
    return result


def cached_visualize_directions(model: nn.Module, model_name: str, weights_sha256: str, layer: str,
                                directions: np.ndarray, cache_dir: str | Path,
                                quality: Mapping[str, Any] | str | None = None, *, position: str = "mean",
                                channels_in: int = 3, batch: int = 32, num_threads: int | None = 2,
                                device: str = "cpu") -> list[dict]:
    """Cached `visualize_directions`; each direction is keyed by the sha256 of its float32 bytes.

    Returns one entry per row {"model", "layer", "direction_sha256", "image" (relative to featureviz/),
    "quality", "sha256"}; these entries are not listed in the manifest (they have no channel).
    """
    q = resolve_quality(quality)
    dirs = np.ascontiguousarray(np.asarray(directions, dtype=np.float32))
    if dirs.ndim != 2:
        raise ValueError(f"directions must be [n, C], got shape {dirs.shape}")
    root = Path(cache_dir) / "featureviz"
    folder = root / safe_component(model_name) / safe_component(layer)
    out: list[dict | None] = [None] * len(dirs)
    missing: list[tuple[int, Path, str, str]] = []
    for i, row in enumerate(dirs):
        dsha = jsonio.sha256_bytes(row.tobytes())
        key = _cache_key(kind="direction", weights=weights_sha256, layer=layer, direction=dsha, quality=q,
                         position=position, channels_in=channels_in)
        record_path = folder / f"d-{key[:12]}.json"
        record = _cache(record_path, key).get(picture=True)
        if record is None:
            missing.append((i, record_path, key, dsha))
        else:
            out[i] = _entry(root, record_path, record)
    if missing:
        images = visualize_directions(model, layer, dirs[[i for i, *_ in missing]], position=position,
                                      size=q["size"], steps=q["steps"], lr=q["lr"], seed=q["seed"], batch=batch,
                                      channels_in=channels_in, num_threads=num_threads, device=device)
        for (i, record_path, key, dsha), image in zip(missing, images):
            record = _cache(record_path, key).put(png=png_bytes(image), record={
                "key": key, "model": model_name, "layer": layer,
                "direction_sha256": dsha, "position": position, "quality": q, "weights_sha256": weights_sha256,
                "channels_in": channels_in})
            out[i] = _entry(root, record_path, record)
    return [e for e in out if e is not None]


def _entry(root: Path, record_path: Path, record: dict) -> dict:
    entry = {"model": record["model"], "layer": record["layer"],
             "image": record_path.with_suffix(".png").relative_to(root).as_posix(),
             "quality": record["quality"], "sha256": record["sha256"]}
    for field in ("channel", "direction_sha256"):
        if field in record:
            entry[field] = record[field]
    return entry


def _entry_id(entry: dict) -> tuple[str, str, int, str]:
    return (str(entry["model"]), str(entry["layer"]), int(entry["channel"]), jsonio.dumps(entry.get("quality")))


def read_manifest(root: Path) -> list[dict]:
    """The manifest's entries, or [] when missing; a corrupt manifest is an error naming the file."""
    path = Path(root) / MANIFEST
    if not path.exists():
        return []
    data = jsonio.read_json(path)
    if not isinstance(data, list) or not all(_valid(e, Path(root)) for e in data):
        raise AnalysisError(f"{path}: corrupt feature-visualization manifest (delete it to rebuild)")
    return data


def _valid(e: Any, root: Path) -> bool:
    """An entry of the shape _entry writes whose image lies inside the featureviz folder (analysis.core.paths.inside)."""
    return (isinstance(e, dict) and isinstance(e.get("model"), str) and isinstance(e.get("layer"), str)
            and type(e.get("channel")) is int and isinstance(e.get("sha256"), str)
            and inside(root, e.get("image")) is not None)


def update_manifest(root: Path, new_entries: list[dict]) -> list[dict]:
    """Upsert entries by (model, layer, channel, quality); drop entries whose PNG is gone; sort; write atomically.

    A newer entry for the same (model, layer, channel, quality) -- e.g. after retraining -- replaces the old one.
    """
    root = Path(root)
    try:
        old = read_manifest(root)
    except AnalysisError:
        old = []  # the manifest is derived data: rebuilding it from this run beats failing the build
    merged = {_entry_id(e): e for e in old if (root / e["image"]).is_file()}
    merged.update({_entry_id(e): e for e in new_entries})
    entries = [merged[k] for k in sorted(merged)]
    jsonio.write_json(root / MANIFEST, entries)
    return entries
