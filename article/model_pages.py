"""Stage: a weight-explorer page for every analysed model, ``models/<model>/index.html``.

The page itself holds only the table of layers; each layer's neurons (``layers/<tensor>.js`` + a sprite PNG of
their NMF pictures) load when the reader opens that layer, so a page stays small at ImageNet scale. Reads the
analysis cache (JSON + PNG), never torch.

A content-only edit leaves every model folder as it was: the cache records, for the site a build made (sitedir.record),
each folder's key (everything its bytes depend on) and its listing (names, sizes, inodes, mtimes), and a folder whose
key and listing match is hard-linked from the previous site file by file, without reading or rendering anything
(regular files only; else it is written anew).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

from . import cache, sitedir, theme
from . import explorer_data as xd
from . import explorer_examples as xx
from .errors import BuildError
from .jsonio import read_record as _read



def model_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or "model"


def explorer_href(model: str, tensor: str | None = None, neuron: int | None = None, root: str = "../") -> str:
    """Link from a page ``root`` below the site root to a model page, its layer, or one neuron of that layer."""
    href = f"{root}models/{model_slug(model)}/index.html"
    if tensor is not None:
        href += "#" + fragment(tensor) + (f"/{int(neuron)}" if neuron is not None else "")
    return href


def follow_selection(select: str, field: str, targets: dict[str, dict], param: str | None = None) -> dict:
    """A chart's `usermeta` telling figures.js to keep its "in the weight explorer" link on the reader's neuron.

    select/field: the Vega-Lite point selection and the field that holds the neuron (its leading integer: a
    context pair "12-3" is output neuron 12). param: a parameter whose value picks the target (the NMF explorer's
    layer), else the target is "". targets: value -> {href: explorer_href(model, tensor), text: the link's text
    with "{n}" for the neuron, neurons: how many (optional)}; the link followed is the figure's link to the target's page.
    """
    return {"vwExplorer": {"select": select, "field": field, "param": param, "targets": targets}}


def fragment(tensor: str) -> str:
    """A tensor id as a URL fragment: '>' is percent-encoded (browsers do it anyway), the rest reads as written."""
    return tensor.replace("%", "%25").replace(">", "%3E").replace(" ", "%20").replace('"', "%22")


def _image(cache_dir: Path, rel: str) -> bytes | None:
    """A cached picture named relative to the cache folder or to its featureviz/ folder; None when gone."""
    for base in (cache_dir, cache_dir / "featureviz"):
        path = base / rel
        if path.is_file():
            return path.read_bytes()
    return None


def _users(articles: list, name: str, slug: str) -> list[dict[str, str]]:
    """The articles that link to this model's page or declare the model in their front matter."""
    out = []
    for a in articles:
        declared = name in (a.source.meta.models or {})
        if declared or f"models/{slug}/index.html" in a.html:
            out.append({"title": a.source.meta.title, "href": f"../../{a.slug}/index.html"})
    return out


def reads_from(entries: list[dict], entry: dict) -> str | None:
    """The tensor whose output neurons ``entry``'s inputs are: the one ending at its source (a block's output, after
    the skip and activation) before a conv kernel inside that block that also feeds it."""
    feeding = [p for p in entries if p.get("next") == entry["id"]]
    exact = [p["id"] for p in feeding if p.get("layer") == entry.get("source")]
    return (exact or [p["id"] for p in feeding] or [None])[0]


def model_files(name: str, model: dict, cache_dir: Path, fv_manifest: list[dict]) -> tuple[list[dict], dict]:
    """(rows of the layer table, files relative to the model's folder) for one model of the manifest."""
    root = cache_dir / "analysis"
    entries = model["tensors"]
    records = {e["id"]: _read(root / e["file"]) for e in entries}
    files: dict[str, bytes] = {}
    ex_layers, ex_inputs, ex_files = xx.model_examples(model, lambda rel: _read(root / rel),
                                                       lambda rel: _image(root, rel), name)
    files.update(ex_files)
    rows = []
    for e in entries:
        rec = records[e["id"]]
        stem = PurePosixPath(e["file"]).stem
        prev = reads_from(entries, e)
        nxt = records.get(e.get("next")) if e.get("next") else None
        payload = xd.layer_payload(rec, e, nxt, prev)
        rgb = (rec.get("nmf") or {}).get("rgb")
        if rgb:
            png, cols, rows_ = xd.sprite(rgb)
            files[f"layers/{stem}.png"] = png
            payload["sprite"] = {"src": f"layers/{stem}.png", "cols": cols, "rows": rows_}
        for ch, rel in sorted(xd.featureviz_by_channel(fv_manifest, name, e["layer"], model.get("blocks", [])).items()):
            data = _image(cache_dir, rel)
            if data is not None and ch < payload["n"]:
                target = "img/" + rel.replace("/", "_")
                files[target] = data
                payload["fv"][str(ch)] = target
        # Dataset examples: this layer's neurons, its inputs (the layer that feeds it; else the tensor before) and its
        # outputs (the next tensor's).
        before = ex_inputs.get(e["id"]) or next((x["layer"] for x in entries if x["id"] == prev), None)
        payload["ex"] = {"self": ex_layers.get(e["layer"]),
                         "prev": ex_layers.get(before) if (ex_layers.get(before) or {}).get("n") == payload["in"]
                         else None,
                         "next": ex_layers.get(next((x["layer"] for x in entries if x["id"] == e.get("next")), None))}
        files[f"layers/{stem}.js"] = xd.layer_script(payload).encode("utf-8")
        rows.append({**e, "n": payload["n"], "script": f"layers/{stem}.js", "anchor": e["id"],
                     "fragment": fragment(e["id"]), "has_fv": bool(payload["fv"])})
    return rows, files


def _key_parts(name: str, model: dict, manifest: dict, fv_manifest: list[dict], cache_dir: Path) -> list[str | bytes]:
    """Everything a model's explorer files depend on: this code, its manifest entry, the bytes of the records it
    reads (by the hashes the analysis listed, else read here) and its feature visualizations."""
    listed = {f["path"]: f["sha256"] for f in manifest.get("files", [])}
    parts: list[str | bytes] = [Path(__file__).read_bytes(), Path(xd.__file__).read_bytes(), Path(xx.__file__).read_bytes(),
                                json.dumps([name, model, [e for e in fv_manifest if e.get("model") == name]],
                                           sort_keys=True)]
    for rel in [e["file"] for e in model["tensors"]] + [c["file"] for c in model.get("context", [])] + \
            xx.record_files(manifest, name):
        digest = listed.get(rel)
        if digest is None:
            path = cache_dir / "analysis" / rel
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        parts.append(f"{rel}={digest}")
    return parts


def _pack(value: tuple[list[dict], dict]) -> bytes:
    rows, files = value
    return cache.pack({**files, "rows.json": json.dumps(rows).encode()})


def _unpack(raw: bytes) -> tuple[list[dict], dict]:
    files = cache.unpack(raw)
    return json.loads(files.pop("rows.json")), files


def cached_model_files(name: str, model: dict, manifest: dict, cache_dir: Path,
                       fv_manifest: list[dict], use_cache: bool = True,
                       parts: list[str | bytes] | None = None) -> tuple[list[dict], dict]:
    """model_files() through the render cache (one zip per model and inputs; data only: nothing read back is
    executed). ``parts``: the key parts when the caller already has them."""
    kind = f"explorer-{model_slug(name)}"
    parts = parts if parts is not None else _key_parts(name, model, manifest, fv_manifest, cache_dir)
    path = cache.entry(cache_dir, kind, parts, "zip") if use_cache else None
    value = cache.cached(path, _unpack, lambda: model_files(name, model, cache_dir, fv_manifest), _pack)
    cache.keep_only(path, kind)
    return value


def write_model_pages(env: Any, site: Path, config: Any, cache_dir: Path, articles: list, report: Any,
                      previous: Path | None = None, use_cache: bool = True,
                      site_dir: Path | None = None) -> list[dict]:
    """Write every model page into ``site`` (the temp folder that becomes ``site_dir``, by default ``previous``);
    return the index's list of models ({name, label, href, layers})."""
    site_dir = site_dir or previous
    from .output import page_parts, render_template, write

    manifest_path = Path(cache_dir) / "analysis" / "manifest.json"
    if not manifest_path.is_file():
        return []
    manifest = _read(manifest_path)
    fv_path = Path(cache_dir) / "featureviz" / "manifest.json"
    fv_manifest = _read(fv_path) if fv_path.is_file() else []
    listed = []
    before = sitedir.recorded(cache_dir, previous, "models") if use_cache else None
    before = before if isinstance(before, dict) else {}
    kept, common = {}, None
    for name, model in sorted(manifest.get("models", {}).items()):
        if not model.get("tensors"):
            continue
        slug = model_slug(name)
        users = _users(articles, name, slug)
        parts = _key_parts(name, model, manifest, fv_manifest, Path(cache_dir))
        common = common if common is not None else [*page_parts(env, config), json.dumps(list(theme.DIVERGING))]
        key = cache.key([cache.key(parts), *common, json.dumps(users, sort_keys=True)])
        old = before.get(slug)
        folder = site / "models" / slug
        if previous is not None and isinstance(old, dict) and old.get("key") == key \
                and sitedir.link_folder(previous / "models" / slug, folder, old.get("listing")):
            listing = old["listing"]  # hard links of exactly that listing
        else:
            rows, files = cached_model_files(name, model, manifest, Path(cache_dir), fv_manifest, use_cache, parts)
            for rel, data in sorted(files.items()):
                write(site, f"models/{slug}/{rel}", data, previous)
            page = render_template(
                env, "model.html", site=config, site_raw=config.raw, root="../../",
                page_url=f"{config.site_url}models/{slug}/index.html", model_name=name,
                label=model.get("label", name), info=model.get("info") or {}, notes=model.get("notes", []),
                layers=rows, articles=users, diverging=json.dumps(list(theme.DIVERGING)))
            write(site, f"models/{slug}/index.html", page, previous)
            listing = sitedir.listing(folder)
        kept[slug] = {"key": key, "listing": listing}
        report.pages.append(f"models/{slug}/index.html")
        listed.append({"name": name, "label": model.get("label", name), "href": f"models/{slug}/index.html",
                       "layers": len(model["tensors"]), "family": model.get("family", "")})
    if kept and site_dir is not None and use_cache and (site / sitedir.SITE_MARKER).is_file():
        sitedir.record(cache_dir, site_dir, site, "models", kept)
    return listed
