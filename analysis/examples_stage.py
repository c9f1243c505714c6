"""The dataset-examples stage: for every channel of every analysed layer of a model, its strongest examples from the
model's image set (analysis/core/image_sets.py), found by one pass over the images (analysis/example_pass.py).

Kept per model and extended incrementally: the running top-k and the images already seen live in
`<cache>/examples/<model>/<model key>/state.json` (crops, for large folders, beside it; the states of
the KEPT_VARIANTS model keys used most recently are kept), so a larger folder or budget processes
only the new images, and a pass stopped by the site's time budget (site.yml `analysis: examples: {seconds}`) resumes
on the next build. An image whose file changed, or that was removed, restarts the pass (its old examples cannot be
taken back out of a top-k).

Writes, under `<cache>/analysis/<model>/examples/` (schema in analysis/SCHEMA.md):
  index.json        the dataset, how far the pass got, and every analysed layer with its record file
  <layer>.json      per channel its top-k: activation, source image, receptive field and context boxes, picture rect
  pics/*            the pictures the rects point into: the used source images, resized (few images), packed into
                    sprites when tiny; or, for a large folder, <layer>/c<channel>.jpg strips of context crops
"""
from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analysis import example_pass as xp
from analysis.core import image_sets, jsonio
from analysis.cache import entry_key
from analysis.core.errors import AnalysisError
from analysis.examples import ReceptiveField
from analysis.core.paths import safe_component
from analysis.core.spec import EXAMPLES_SETTINGS, Subject, Workspace, prune_variants, variant_name

SCHEMA = "vw-examples/1"
SETTINGS = EXAMPLES_SETTINGS  # site.yml analysis.examples
SCALE_FACTORS = (1.0, 1.5, 2.0)  # photos are looked at with their shorter side at these multiples of the model's size
CELL = 64  # crops (large folders) are stored at this many pixels a side
SPRITE_MAX = 64  # pictures no larger than this are packed into sprite sheets (digits, the LFW faces)
SHEET_WIDTH = 1024
JPEG_QUALITY = 88
BATCH = 64  # images between time-budget checks
CHUNK_PIXELS = 1 << 21  # views held at once (2 Mpx, 24 MB as float32 RGB): a few photos, or a chunk of digits
BATCH_PIXELS = 1 << 18  # images of one shape per forward pass: as many as make this many pixels (at least one)
SAVE_EVERY = 60.0  # seconds between checkpoints of a long pass (a killed build loses at most this much)
PROGRESS_EVERY = 10.0


def dataset_key(dataset: str) -> str:
    """What a model's results depend on in its image set, without reading an image: a named set's name, or a folder's
    listing (names, sizes, modification times; not where the folder lies)."""
    if image_sets.is_named(dataset):
        return dataset
    try:
        return "folder:" + image_sets.folder_signature(Path(dataset))
    except image_sets.DatasetError:
        return "folder:unreadable"  # the stage says why, naming the file


def settings(raw: dict | None) -> dict:
    return {**SETTINGS, **{k: v for k, v in (raw or {}).items() if v is not None}}


def input_layer(recipe, tensor) -> str | None:
    """The layer whose neurons are a tensor's inputs: its source block, or for a conv's own kernel the module that
    feeds the conv in the graph (None for the network input, or without a graph)."""
    name = tensor.source or (recipe.graph.feeds.get(tensor.layer) if recipe.graph is not None else None)
    return None if name in (None, "input") else name


def analysed_layers(recipe) -> list[str]:
    """Every layer whose neurons a model page lists: each tensor's output layer and the layer its inputs are (not
    the input image), in recipe order."""
    names: list[str] = []
    for t in recipe.tensors:
        for name in (input_layer(recipe, t), t.layer):
            if name and name not in names:
                names.append(name)
    return names


@dataclass
class _State:
    key: str
    seen: dict[str, list] = field(default_factory=dict)  # image id -> [size, mtime_ns, sha256] (folders) or []
    tops: dict[str, xp.RunningTopK] = field(default_factory=dict)
    version: int = 0  # bumped on every change: records are rewritten only when it moved


def examples(s: Subject, ws: Workspace, image_set: image_sets.ImageSet, raw_settings: dict | None = None) -> dict:
    """Run (or extend) the pass for one model and write its records; the model's manifest entry."""
    import torch

    from analysis.featureviz.hooks import deterministic, frozen

    w0, c0 = time.perf_counter(), time.process_time()
    cfg = settings(raw_settings)
    top, per_image = int(cfg["top"]), int(cfg["per_image"])
    recipe, net = s.recipe, s.recipe.network(s.model)
    channels_in = int(s.info.get("input_channels", 3))
    names = analysed_layers(recipe)
    hooks = [recipe.hook(n) for n in names]
    base = None if image_set.kind == "mnist" else (recipe.photo_size or recipe.image_size)
    probe = base or int(recipe.image_size)
    crops = not image_set.ships_sources
    # One running state per model key (like ws.model_dir): going back to an earlier setting (an image size, other
    # weights) finds that setting's pass instead of starting it over; the few used most recently are kept.
    state_dir = ws.cache_dir / "examples" / safe_component(s.name) / variant_name(s.info["weights_sha256"])
    state_dir.mkdir(parents=True, exist_ok=True)
    prune_variants(state_dir.parent, f"{state_dir.parent.name}/{state_dir.name}")
    layers = _layers(s, ws, net, names, hooks, max(32, probe), channels_in, state_dir)
    key = entry_key(__name__, s.info["weights_sha256"], "examples", jsonio.dumps(recipe.blocks_json()),
                    [(layer.name, layer.hook, _rf_json(layer.rf)) for layer in layers], base, SCALE_FACTORS, top,
                    per_image, crops, image_set.kind, channels_in, xp.CONTEXT_MIN, xp.CONTEXT_MARGIN, xp.MAX_OVERLAP,
                    xp.PEAKS, CELL, xp.ENLARGE)
    crop_shape = (CELL, CELL, channels_in) if crops else None
    state = _load_state(state_dir, key, layers, top, crop_shape, image_set)
    _check_seen(s, ws, state, image_set, crop_shape)
    limit = cfg["count"]
    todo = [k for k, it in enumerate(image_set.items) if it.id not in state.seen]
    if limit is not None:
        todo = todo[: max(0, int(limit) - len(state.seen))]
    t0 = time.perf_counter()
    done, stopped = 0, False
    if todo:
        ws.log(f"{s.name}: dataset examples from {len(todo)} new image(s) of {image_set.name} "
               f"({len(state.seen)} seen before), {len(layers)} layers")
        last_save = last_note = t0
        with deterministic(ws.n_jobs), frozen(net), torch.no_grad():
            for start in range(0, len(todo), BATCH):
                chunk = todo[start:start + BATCH]
                _process(net, layers, state, image_set, chunk, base, per_image, channels_in, crops)
                done += len(chunk)
                now = time.perf_counter()
                if cfg["seconds"] is not None and now - t0 >= float(cfg["seconds"]) and done < len(todo):
                    stopped = True  # checked after a chunk: every build makes progress, however small the budget
                    break
                if now - last_note >= PROGRESS_EVERY and done < len(todo):
                    rate = done / (now - t0)
                    ws.log(f"{s.name}: dataset examples {done}/{len(todo)} new images, {now - t0:.0f} s "
                           f"(about {(len(todo) - done) / rate:.0f} s left)")
                    last_note = now
                if now - last_save >= SAVE_EVERY:
                    _save_state(state_dir, state, image_set)
                    last_save = now
        _save_state(state_dir, state, image_set)
    complete = not stopped
    out = _write_records(s, ws, image_set, state, layers, cfg, base, crops, complete)
    if todo:
        ws.log(f"{s.name}: dataset examples from {done} new image(s) in {time.perf_counter() - w0:.1f} s "
               f"({time.process_time() - c0:.1f} s CPU, receptive fields and records included); {len(state.seen)} of "
               f"{len(image_set.items)} seen"
               + ("" if complete else " (stopped by site.yml analysis.examples.seconds; the next build continues)"))
    return out


def _layers(s: Subject, ws: Workspace, net, names, hooks, probe: int, channels_in: int, folder: Path) -> list[xp.Layer]:
    """The analysed layers with their receptive fields and channel counts: measured once per weights and blocks (a
    forward and a partial backward per layer), then read from `<state folder>/layers.json`."""
    from analysis.featureviz.hooks import deterministic, frozen

    key = entry_key(__name__, s.info["weights_sha256"], "receptive-fields",
                    jsonio.dumps(s.recipe.blocks_json()), hooks, probe, channels_in, xp.PROBES, xp.WIDE)
    saved = jsonio.read_json(folder / "layers.json")
    if isinstance(saved, dict) and saved.get("key") == key and isinstance(saved.get("layers"), dict):
        try:
            return [xp.Layer(n, h, ReceptiveField(int(saved["layers"][h]["size"]), tuple(saved["layers"][h]["stride"]),
                                                  tuple(saved["layers"][h]["offset"])),
                             int(saved["layers"][h]["channels"])) for n, h in zip(names, hooks)]
        except (KeyError, TypeError, ValueError):
            pass
    with deterministic(ws.n_jobs), frozen(net):
        found = xp.receptive_fields(net, hooks, probe, channels_in)
    jsonio.write_bytes_atomic(folder / "layers.json", json.dumps({"key": key, "layers": {
        h: {**_rf_json(rf), "channels": c} for h, (rf, c) in found.items()}}).encode())
    return [xp.Layer(n, h, *found[h]) for n, h in zip(names, hooks)]


# ---------------------------------------------------------------------------------------------------- the pass


def _prepare(image_set, item, base, channels_in):
    """(the image as float32 [H, W, c], its sha256 or None, its full size (h, w))."""
    target = None if base is None else int(round(base * max(SCALE_FACTORS)))
    try:
        img, digest, full = image_sets.load(image_set, item, target)
    except image_sets.DatasetError as exc:
        raise AnalysisError(str(exc), field="dataset") from None
    return (image_sets.luma(img) if channels_in == 1 else img), digest, full


def _process(net, layers, state: _State, image_set, chunk: list[int], base, per_image, channels_in, crops) -> None:
    """Run a chunk of images (positions in the set) through the network and merge their picks into the top-ks: read
    and resized a few at a time, at most CHUNK_PIXELS of views in memory (photos at three scales are large)."""
    from analysis.examples import resize_photo

    views: list[list[np.ndarray]] = []  # per image, the arrays it is looked at (one per scale)
    sources: list[tuple[int, int]] = []  # per image its full size: coordinates refer to it
    done: list[int] = []
    pixels = 0
    for k, pos in enumerate(chunk):
        item = image_set.items[pos]
        img, digest, full = _prepare(image_set, item, base, channels_in)
        full = (int(full[0]), int(full[1]))
        views.append([img if short is None or (short == min(img.shape[:2]) and img.shape[:2] == full)
                      else resize_photo(img, short) for short in xp.scales_for(full, base, SCALE_FACTORS)])
        sources.append(full)
        done.append(pos)
        state.seen[item.id] = _stat(item, digest)
        pixels += sum(v.shape[0] * v.shape[1] for v in views[-1])
        if pixels >= CHUNK_PIXELS or k == len(chunk) - 1:
            _search(net, layers, state, done, views, np.asarray(sources, dtype=np.int64), per_image, crops)
            views, sources, done, pixels = [], [], [], 0
    state.version += 1


def _search(net, layers, state: _State, chunk: list[int], views: list[list[np.ndarray]], source: np.ndarray,
            per_image: int, crops: bool) -> None:
    """Forward passes of the views (one shape batched together), every layer's candidates, spread picks, merge."""
    import torch

    n, v_max, m, per = len(chunk), max(map(len, views)), xp.PEAKS * per_image, per_image
    shapes = np.ones((n, v_max, 2), dtype=np.int64)  # scaled (h, w) of each view
    for i, vs in enumerate(views):
        for v, arr in enumerate(vs):
            shapes[i, v] = arr.shape[:2]
    cand = {layer.name: (np.full((n, layer.channels, v_max * m), -np.inf), np.zeros((n, layer.channels, v_max * m, 2),
                                                                                     dtype=np.int64))
            for layer in layers}
    groups: dict[tuple, list[tuple[int, int]]] = {}
    for i, vs in enumerate(views):
        for v, arr in enumerate(vs):
            groups.setdefault(arr.shape, []).append((i, v))
    hooks = list(dict.fromkeys(layer.hook for layer in layers))
    for shape, members in groups.items():
        size = max(1, BATCH_PIXELS // (shape[0] * shape[1]))
        for s0 in range(0, len(members), size):
            group = members[s0:s0 + size]
            x = torch.from_numpy(np.stack([views[i][v] for i, v in group])).permute(0, 3, 1, 2).contiguous()
            acts = xp.capture(net, hooks, x)
            for layer in layers:
                act = acts[layer.hook]
                # Only maps whose maximum beats the channel's current k-th best can add an example: after the first
                # images that is a few, and only those are searched for peaks.
                bi, ci = (act.detach().amax(dim=(2, 3)) > torch.from_numpy(state.tops[layer.name].kth)).nonzero(
                    as_tuple=True)
                if not len(bi):
                    continue
                vals, fy, fx = xp.peaks(act[bi, ci], m)
                gi = np.asarray([group[b][0] for b in bi.tolist()])
                gv = np.asarray([group[b][1] for b in bi.tolist()])
                ci = ci.numpy()
                cv, cm = cand[layer.name]
                cols = gv[:, None] * m + np.arange(vals.shape[1])[None, :]
                cv[gi[:, None], ci[:, None], cols] = vals
                cm[gi[:, None], ci[:, None], cols, 0] = fy
                cm[gi[:, None], ci[:, None], cols, 1] = fx
    vcol = np.arange(v_max * m) // m
    as_u8: dict[tuple[int, tuple[int, int], int], np.ndarray] = {}
    for layer in layers:
        cv, cm = cand[layer.name]
        ri, rc = np.nonzero(np.isfinite(cv).any(axis=2))
        if not len(ri):
            continue
        sh = shapes[ri][:, vcol]  # [R, V*m, 2]
        fy, fx = cm[ri, rc, :, 0], cm[ri, rc, :, 1]
        boxes = xp.source_boxes(layer.rf, fy, fx, sh[..., 0], sh[..., 1], source[ri, 0:1], source[ri, 1:2])
        picks = xp.spread_picks(cv[ri, rc], boxes, per)
        top = state.tops[layer.name]
        new_v = np.full((layer.channels, n * per), -np.inf)
        new_m = np.zeros((layer.channels, n * per, 7), dtype=np.int64)
        for p in range(per):
            j = picks[:, p]
            ok = j >= 0
            r_i, r_c, j = ri[ok], rc[ok], j[ok]
            col = r_i * per + p
            v = vcol[j]
            new_v[r_c, col] = cv[r_i, r_c, j]
            new_m[r_c, col] = np.stack([np.asarray(chunk)[r_i], source[r_i, 0], source[r_i, 1], shapes[r_i, v, 0],
                                        shapes[r_i, v, 1], cm[r_i, r_c, j, 0], cm[r_i, r_c, j, 1]], axis=-1)

        def cutter(ch: int, col: int, layer=layer, new_m=new_m) -> np.ndarray:
            facts = new_m[ch, col]
            i, shape = col // per, (int(facts[xp.HS]), int(facts[xp.WS]))
            x0, y0, side = _scaled_context(layer, facts)
            f = max(1, int(side // (2 * CELL)))  # a large context is cut from the view shrunk f times (box filter)
            if (i, shape, f) not in as_u8:  # each view converted once, when its first crop is cut
                view = xp.to_u8(next(a for a in views[i] if a.shape[:2] == shape))
                as_u8[(i, shape, f)] = view if f == 1 else _shrink(view, f)
            return xp.cut(as_u8[(i, shape, f)], x0 / f, y0 / f, side / f, CELL)

        top.merge(new_v, new_m, cutter if crops else None)


def _shrink(view: np.ndarray, f: int) -> np.ndarray:
    """uint8 [h, w, c] -> each f x f block averaged (PIL's reduce), [ceil(h/f), ceil(w/f), c]."""
    from PIL import Image

    img = Image.fromarray(view[:, :, 0] if view.shape[2] == 1 else view).reduce(f)
    arr = np.asarray(img)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _scaled_context(layer: xp.Layer, facts) -> tuple[float, float, float]:
    """The context square of an entry in the pixels of the scaled image it was found in."""
    shape = (int(facts[xp.HS]), int(facts[xp.WS]))
    box = xp.source_box(layer.rf, int(facts[xp.FY]), int(facts[xp.FX]), *shape, *shape)
    return xp.context_box(box, xp.context_side(layer.rf.size), shape)


def _stat(item, digest) -> list:
    if digest is None:
        return []
    st = Path(item.path).stat()
    return [st.st_size, st.st_mtime_ns, digest]


def _check_seen(s: Subject, ws: Workspace, state: _State, image_set, crop_shape) -> None:
    """A seen folder image that is gone or whose bytes changed restarts the pass (a top-k cannot give it back)."""
    if image_set.kind != "folder" or not state.seen:
        return
    by_id = {it.id: it for it in image_set.items}
    problem = None
    for image_id, info in state.seen.items():
        item = by_id.get(image_id)
        if item is None:
            problem = f"{image_id} was removed"
            break
        try:
            st = Path(item.path).stat()
            if len(info) == 3 and [st.st_size, st.st_mtime_ns] == info[:2]:
                continue
            digest = hashlib.sha256(Path(item.path).read_bytes()).hexdigest()
        except OSError:
            problem = f"{image_id} cannot be read"
            break
        if len(info) != 3 or digest != info[2]:
            problem = f"{image_id} changed"
            break
        state.seen[image_id] = [st.st_size, st.st_mtime_ns, digest]  # touched or copied: same bytes
    if problem:
        ws.log(f"{s.name}: dataset examples start over: {problem} since the last pass")
        state.seen.clear()
        state.tops = {n: xp.RunningTopK(t.vals.shape[0], t.k, crop_shape) for n, t in state.tops.items()}
        state.version += 1


# ---------------------------------------------------------------------------------------------------- state


def _load_state(folder: Path, key: str, layers: list[xp.Layer], top: int, crop_shape, image_set) -> _State:
    """The saved pass when it was made with the same key, its images still in the set and its crops intact; else a
    fresh one. Saved entries name their image by id (positions move when a folder grows)."""
    state = _State(key, tops={layer.name: xp.RunningTopK(layer.channels, top, crop_shape) for layer in layers})
    raw = jsonio.read_json(folder / "state.json")
    if not isinstance(raw, dict) or raw.get("key") != key or not isinstance(raw.get("tops"), dict):
        return state
    position = {it.id: k for k, it in enumerate(image_set.items)}
    try:
        ids = list(raw["ids"])
        for layer in layers:
            saved = raw["tops"][layer.name]
            vals = np.asarray([[-np.inf if v is None else v for v in row] for row in saved["vals"]], dtype=np.float64)
            meta = np.asarray(saved["meta"], dtype=np.int64)
            if vals.shape != (layer.channels, top) or meta.shape != (layer.channels, top, 7):
                return _State(key, tops=state.tops)
            live = np.isfinite(vals)
            pos = np.vectorize(lambda k: position.get(ids[k], -1), otypes=[np.int64])(meta[..., xp.POS]) \
                if meta.size else meta[..., xp.POS]
            if (pos[live] < 0).any():
                return _State(key, tops=state.tops)  # an image gone from the set: start over
            meta[..., xp.POS] = np.where(live, pos, 0)
            t = state.tops[layer.name]
            t.vals, t.meta = vals, meta
            if crop_shape is not None:
                arr = np.load(folder / f"crops-{safe_component(layer.name)}-v{int(raw['version'])}.npy",
                              allow_pickle=False)
                if arr.shape != t.crops.shape:
                    return _State(key, tops={n: xp.RunningTopK(x.vals.shape[0], top, crop_shape)
                                             for n, x in state.tops.items()})
                t.crops = arr  # saved in rank order: t.slot stays 0..k-1
        state.seen, state.version = dict(raw.get("seen") or {}), int(raw.get("version", 0))
        return state
    except (KeyError, TypeError, ValueError, IndexError, OSError):
        return _State(key, tops={layer.name: xp.RunningTopK(layer.channels, top, crop_shape) for layer in layers})


def _save_state(folder: Path, state: _State, image_set) -> None:
    """The running top-ks (images by id), the seen images and, for crops, one uint8 array per layer (lossless, so
    strips written for the site lose nothing however often a pass resumes). Crops first: the JSON commits them."""
    ids: list[str] = []
    index: dict[int, int] = {}
    tops = {}
    for name, t in state.tops.items():
        meta = t.meta.copy()
        live = np.isfinite(t.vals)
        for p in np.unique(meta[..., xp.POS][live]):
            if int(p) not in index:
                index[int(p)] = len(ids)
                ids.append(image_set.items[int(p)].id)
        meta[..., xp.POS] = np.vectorize(lambda p: index.get(int(p), 0), otypes=[np.int64])(meta[..., xp.POS]) \
            if meta.size else meta[..., xp.POS]
        meta[~live] = 0
        tops[name] = {"vals": [[float(v) if np.isfinite(v) else None for v in row] for row in t.vals],
                      "meta": meta.tolist()}
        if t.crops is not None:
            buf = io.BytesIO()
            np.save(buf, t.ranked_crops(), allow_pickle=False)
            jsonio.write_bytes_atomic(folder / f"crops-{safe_component(name)}-v{state.version}.npy", buf.getvalue())
    jsonio.write_bytes_atomic(folder / "state.json", json.dumps({
        "schema": "vw-examples-state/1", "key": state.key, "version": state.version, "seen": state.seen,
        "ids": ids, "tops": tops}, separators=(",", ":")).encode())
    for old in folder.glob("crops-*.npy"):  # earlier checkpoints
        if not old.name.endswith(f"-v{state.version}.npy"):
            old.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------- records


def _write_records(s: Subject, ws: Workspace, image_set, state: _State, layers: list[xp.Layer], cfg: dict,
                   base, crops: bool, complete: bool) -> dict:
    folder = ws.model_dir(s) / "examples"
    index_path = folder / "index.json"
    summary = {"file": str(index_path.relative_to(ws.root)), "complete": complete, "images": len(state.seen),
               "total": len(image_set.items)}
    gray = bool(image_set.gray or int(s.info.get("input_channels", 3)) == 1)
    stamp = hashlib.sha256(f"{state.key}|{state.version}|{complete}|{len(image_set.items)}".encode()).hexdigest()
    old = jsonio.read_json(index_path)
    digests = old.get("sha256") if isinstance(old, dict) else None
    if isinstance(old, dict) and old.get("stamp") == stamp and isinstance(digests, dict) and all(
            (ws.root / f).is_file() and jsonio.sha256_file(ws.root / f) == digests.get(f)
            for f in old.get("files", [])):
        return summary  # every file as written (a damaged or edited one is written again)
    rows = {layer.name: state.tops[layer.name].rows() for layer in layers}
    written: dict[str, bytes] = {}
    pictures = None if crops else _source_pictures(s, image_set, rows, base, written, folder, ws.root)
    index_layers = {}
    for layer in layers:
        stem = safe_component(layer.name)
        record = _layer_record(s, layer, rows[layer.name], state.tops[layer.name], image_set, pictures, stem, folder,
                               ws.root, written, gray)
        written[f"{stem}.json"] = _dumps(record)
        index_layers[layer.name] = {"file": str((folder / f"{stem}.json").relative_to(ws.root)),
                                    "channels": layer.channels, "hook": layer.hook,
                                    "receptive_field": _rf_json(layer.rf)}
    for rel, data in written.items():
        path = folder / rel
        if not path.is_file() or path.read_bytes() != data:
            jsonio.write_bytes_atomic(path, data)
    keep = set(written) | {"index.json"}
    if folder.is_dir():
        for path in sorted(folder.rglob("*"), reverse=True):  # pictures of examples no longer kept
            rel = path.relative_to(folder).as_posix()
            if path.is_file() and rel not in keep:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    jsonio.write_json(index_path, {
        "schema": SCHEMA, "model": s.name, "stamp": stamp,
        "dataset": {"kind": image_set.kind, "name": image_set.name, "images": len(image_set.items),
                    "seen": len(state.seen), "complete": complete, "pictures": "crops" if crops else "sources",
                    "gray": gray},
        "top": int(cfg["top"]), "per_image": int(cfg["per_image"]),
        "scales": {"base": base, "factors": list(SCALE_FACTORS)},
        "context": {"min": xp.CONTEXT_MIN, "margin": xp.CONTEXT_MARGIN}, "max_overlap": xp.MAX_OVERLAP,
        "layers": index_layers,
        "inputs": {t.id: input_layer(s.recipe, t) for t in s.recipe.tensors if input_layer(s.recipe, t)},
        "files": sorted(str((folder / rel).relative_to(ws.root)) for rel in written),
        "sha256": {str((folder / rel).relative_to(ws.root)): hashlib.sha256(data).hexdigest()
                   for rel, data in sorted(written.items())}})
    return summary


def _dumps(record: dict) -> bytes:
    """A layer record as jsonio.dumps writes it (its numbers are already rounded: 2 decimals for boxes, 7 significant
    digits for activations), without walking its ~100,000 values through jsonio.canonical."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _rf_json(rf) -> dict:
    return {"size": int(rf.size), "stride": [float(f"{v:.7g}") + 0.0 for v in rf.stride],
            "offset": [float(f"{v:.7g}") + 0.0 for v in rf.offset]}


@dataclass
class _Picture:
    file: str  # relative to the analysis root
    width: int
    height: int
    origin: tuple[int, int]  # where the image's top-left lies in the picture (y, x): its sprite cell
    factor: tuple[float, float]  # picture pixels per source pixel (y, x)


def _is_gray(arr: np.ndarray) -> bool:
    return arr.shape[2] == 1 or (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2]))


def _encode(arr: np.ndarray, fmt: str) -> bytes:
    """float [0, 1] or uint8 [H, W, 1|3] -> JPEG or PNG bytes (gray when one channel), deterministic."""
    from PIL import Image

    u8 = arr if arr.dtype == np.uint8 else np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8)
    img = Image.fromarray(u8[:, :, 0], "L") if u8.shape[2] == 1 else Image.fromarray(u8, "RGB")
    buf = io.BytesIO()
    if fmt == "jpg":
        img.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _source_pictures(s, image_set, rows: dict[str, list], base, written, folder, root) -> dict[int, _Picture]:
    """Every source image some example shows, once, at the largest scale it was looked at (never enlarged); tiny ones
    packed into sprite sheets. Returns image position -> its picture."""
    from analysis.examples import resize_photo

    largest: dict[int, int] = {}  # image position -> largest scaled shorter side an example came from
    full: dict[int, tuple[int, int]] = {}
    for entries in rows.values():
        for row in entries:
            for e in row:
                pos = e[1 + xp.POS]
                largest[pos] = max(largest.get(pos, 0), min(e[1 + xp.HS], e[1 + xp.WS]))
                full[pos] = (e[1 + xp.H0], e[1 + xp.W0])
    gray_model = int(s.info.get("input_channels", 3)) == 1
    arrays: dict[int, np.ndarray] = {}
    for pos in sorted(largest):
        img, _, _ = image_sets.load(image_set, image_set.items[pos], largest[pos])
        if min(img.shape[:2]) > largest[pos]:
            img = resize_photo(img, largest[pos])
        if image_set.gray or gray_model or _is_gray(img):
            img = image_sets.luma(img)
        arrays[pos] = img
    out: dict[int, _Picture] = {}
    small = [p for p, a in arrays.items() if max(a.shape[:2]) <= SPRITE_MAX]
    small_set = set(small)
    for pos, arr in arrays.items():
        if pos in small_set:
            continue
        image_id = image_set.items[pos].id
        name = f"pics/{safe_component(Path(image_id).stem)[:40]}-{hashlib.sha256(image_id.encode()).hexdigest()[:8]}.jpg"
        written[name] = _encode(arr, "jpg")
        h0, w0 = full[pos]
        out[pos] = _Picture(str((folder / name).relative_to(root)), arr.shape[1], arr.shape[0], (0, 0),
                            (arr.shape[0] / h0, arr.shape[1] / w0))
    if small:
        cell = max(max(arrays[p].shape[:2]) for p in small)
        cols = max(1, SHEET_WIDTH // cell)
        per_sheet = cols * max(1, 4096 // cell)
        gray = all(arrays[p].shape[2] == 1 for p in small)
        for sheet, start in enumerate(range(0, len(small), per_sheet)):
            members = small[start:start + per_sheet]
            canvas = np.full((-(-len(members) // cols) * cell, min(cols, len(members)) * cell, 1 if gray else 3),
                             xp.PAD_VALUE, dtype=np.float32)
            name = f"pics/sheet-{sheet}.png"
            for k, pos in enumerate(members):
                arr = arrays[pos] if gray or arrays[pos].shape[2] == 3 else np.repeat(arrays[pos], 3, axis=2)
                h, w = arr.shape[:2]
                oy, ox = (k // cols) * cell + (cell - h) // 2, (k % cols) * cell + (cell - w) // 2
                canvas[oy:oy + h, ox:ox + w] = arr
                h0, w0 = full[pos]
                out[pos] = _Picture(str((folder / name).relative_to(root)), canvas.shape[1], canvas.shape[0],
                                    (oy, ox), (h / h0, w / w0))
            written[name] = _encode(canvas, "png")
    return out


def _layer_record(s, layer: xp.Layer, entries: list[list[tuple]], top: xp.RunningTopK, image_set, pictures,
                  stem: str, folder: Path, root: Path, written: dict, gray: bool) -> dict:
    images: list[int] = []
    image_index: dict[int, int] = {}
    pics: list[dict] = []
    pic_index: dict[str, int] = {}
    rows = []
    ranked = top.ranked_crops() if pictures is None else None
    for ch, row in enumerate(entries):
        out = []
        strip = f"{stem}/c{ch}.jpg"
        if pictures is None and row:
            written[strip] = _encode(np.concatenate(list(ranked[ch, :len(row)]), axis=1), "jpg")
        for rank, (value, pos, h0, w0, hs, ws_, fy, fx) in enumerate(row):
            if pos not in image_index:
                image_index[pos] = len(images)
                images.append(pos)
            rf_box = xp.source_box(layer.rf, fy, fx, hs, ws_, h0, w0)
            bx, by, bs = xp.context_box(rf_box, xp.context_side(layer.rf.size) * h0 / hs, (h0, w0))
            item = {"rank": rank, "activation": float(f"{value:.7g}") + 0.0, "image": image_index[pos], "scale": min(hs, ws_),
                    "position": [fy, fx], "rf": _xywh(rf_box), "box": _r([bx, by, bs, bs])}
            if pictures is None:  # a strip of crops, one CELL-pixel square per rank
                cx0, cy0, cside = _scaled_context(layer, (0, 0, 0, hs, ws_, fy, fx))
                f = CELL / cside
                srf = xp.source_box(layer.rf, fy, fx, hs, ws_, hs, ws_)
                pic_file, size = str((folder / strip).relative_to(root)), (len(row) * CELL, CELL)
                at = [rank * CELL, 0, CELL, CELL]
                rf_at = [rank * CELL + (srf[0] - cx0) * f, (srf[1] - cy0) * f, (srf[2] - srf[0]) * f,
                         (srf[3] - srf[1]) * f]
            else:
                p = pictures[pos]
                pic_file, size = p.file, (p.width, p.height)
                (oy, ox), (gy, gx) = p.origin, p.factor
                at = [ox + bx * gx, oy + by * gy, bs * gx, bs * gy]
                rf_at = [ox + rf_box[0] * gx, oy + rf_box[1] * gy, (rf_box[2] - rf_box[0]) * gx,
                         (rf_box[3] - rf_box[1]) * gy]
            if pic_file not in pic_index:
                pic_index[pic_file] = len(pics)
                pics.append({"file": pic_file, "width": size[0], "height": size[1]})
            item["picture"], item["at"], item["rf_at"] = pic_index[pic_file], _r(at), _r(rf_at)
            out.append(item)
        rows.append(out)
    base = folder.relative_to(root)
    for p in pics:
        p["sha256"] = hashlib.sha256(written[Path(p["file"]).relative_to(base).as_posix()]).hexdigest()
    return {"schema": SCHEMA, "model": s.name, "layer": layer.name, "hook": layer.hook, "channels": len(rows),
            "gray": gray, "receptive_field": _rf_json(layer.rf),
            "images": [{"id": image_set.items[p].id, "label": image_set.items[p].label} for p in images],
            "pictures": pics, "examples": rows}


def _xywh(box) -> list[float]:
    return _r([box[0], box[1], box[2] - box[0], box[3] - box[1]])


def _r(values) -> list[float]:
    return [round(float(v), 2) + 0.0 for v in values]  # + 0.0: no -0.0 (jsonio's rule)
