"""Stage: a weight-explorer page for every analysed model, ``models/<model>/index.html``.

The page itself holds only the table of layers; each layer's neurons (``layers/<tensor>.js`` + a sprite PNG of
their NMF pictures) load when the reader opens that layer, so a page stays small at ImageNet scale. Reads the
analysis cache (JSON + PNG), never torch.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from . import explorer_data as xd
from .errors import BuildError

DIVERGING = ["#0571b0", "#92c5de", "#f7f7f7", "#f4a582", "#ca0020"]  # the theme's weight scale, [-1, 1]


def model_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or "model"


def explorer_href(model: str, tensor: str | None = None, neuron: int | None = None, root: str = "../") -> str:
    """Link from a page ``root`` below the site root to a model page, its layer, or one neuron of that layer."""
    href = f"{root}models/{model_slug(model)}/index.html"
    if tensor is not None:
        href += "#" + fragment(tensor) + (f"/{int(neuron)}" if neuron is not None else "")
    return href


def fragment(tensor: str) -> str:
    """A tensor id as a URL fragment: '>' is percent-encoded (browsers do it anyway), the rest reads as written."""
    return tensor.replace("%", "%25").replace(">", "%3E").replace(" ", "%20").replace('"', "%22")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BuildError("analysis result not found (run `python build.py --clean`)", path) from None
    except ValueError as exc:
        raise BuildError(f"analysis result is not valid JSON: {exc}", path) from None


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


def model_files(name: str, model: dict, cache_dir: Path, fv_manifest: list[dict]) -> tuple[list[dict], dict]:
    """(rows of the layer table, files relative to the model's folder) for one model of the manifest."""
    root = cache_dir / "analysis"
    entries = model["tensors"]
    records = {e["id"]: _read(root / e["file"]) for e in entries}
    contexts = [_read(root / c["file"]) for c in model.get("context", [])]
    files: dict[str, bytes] = {}
    rows = []
    for e in entries:
        rec = records[e["id"]]
        stem = PurePosixPath(e["file"]).stem
        prev = next((p["id"] for p in entries if p.get("next") == e["id"]), None)
        nxt = records.get(e.get("next")) if e.get("next") else None
        payload = xd.layer_payload(rec, e, nxt, prev)
        rgb = (rec.get("nmf") or {}).get("rgb")
        if rgb:
            png, cols, rows_ = xd.sprite(rgb)
            files[f"layers/{stem}.png"] = png
            payload["sprite"] = {"src": f"layers/{stem}.png", "cols": cols, "rows": rows_}
        for key, found in (("fv", xd.featureviz_by_channel(fv_manifest, name, e["layer"], model.get("blocks", []))),
                           ("examples", xd.examples_by_channel(contexts, e["layer"]))):
            for ch, value in sorted(found.items()):
                items = [value] if key == "fv" else value
                kept = []
                for item in items:
                    rel = item if key == "fv" else item["image"]
                    data = _image(cache_dir, rel)
                    if data is None or ch >= payload["n"]:
                        continue
                    target = "img/" + rel.replace("/", "_")
                    files[target] = data
                    kept.append(target if key == "fv" else {**item, "image": target})
                if kept:
                    payload[key][str(ch)] = kept[0] if key == "fv" else kept
        files[f"layers/{stem}.js"] = xd.layer_script(payload).encode("utf-8")
        rows.append({**e, "n": payload["n"], "script": f"layers/{stem}.js", "anchor": e["id"],
                     "fragment": fragment(e["id"]), "has_fv": bool(payload["fv"])})
    return rows, files


def _key(name: str, model: dict, manifest: dict, fv_manifest: list[dict], cache_dir: Path) -> str:
    """Everything a model's explorer files depend on: this code, its manifest entry, the bytes of the records it
    reads (by the hashes the analysis listed, else read here) and its feature visualizations."""
    listed = {f["path"]: f["sha256"] for f in manifest.get("files", [])}
    h = hashlib.sha256()
    for code in (Path(__file__), Path(xd.__file__)):
        h.update(code.read_bytes())
    h.update(json.dumps([name, model, [e for e in fv_manifest if e.get("model") == name]], sort_keys=True).encode())
    for rel in [e["file"] for e in model["tensors"]] + [c["file"] for c in model.get("context", [])]:
        digest = listed.get(rel)
        if digest is None:
            path = cache_dir / "analysis" / rel
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        h.update(f"{rel}={digest};".encode())
    return h.hexdigest()


def cached_model_files(name: str, model: dict, manifest: dict, cache_dir: Path,
                       fv_manifest: list[dict]) -> tuple[list[dict], dict]:
    """model_files(), kept as a zip in <cache>/render/explorer/ (data only: nothing read back is executed)."""
    slot = cache_dir / "render" / "explorer" / f"{model_slug(name)}-{_key(name, model, manifest, fv_manifest, cache_dir)[:24]}.zip"
    try:
        with zipfile.ZipFile(slot) as z:
            files = {n: z.read(n) for n in z.namelist() if n != "rows.json"}
            return json.loads(z.read("rows.json")), files
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        pass
    rows, files = model_files(name, model, cache_dir, fv_manifest)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for rel, data in sorted({**files, "rows.json": json.dumps(rows).encode()}.items()):
            z.writestr(zipfile.ZipInfo(rel, (1980, 1, 1, 0, 0, 0)), data)
    slot.parent.mkdir(parents=True, exist_ok=True)
    for old in slot.parent.glob(f"{model_slug(name)}-*.zip"):
        old.unlink(missing_ok=True)  # one entry per model: the cache does not grow with every analysis
    part = slot.with_name(slot.name + ".tmp")
    part.write_bytes(buf.getvalue())
    part.replace(slot)
    return rows, files


def write_model_pages(env: Any, site: Path, config: Any, cache_dir: Path, articles: list, report: Any) -> list[dict]:
    """Write every model page; return the index's list of models ({name, label, href, layers})."""
    from .pipeline import render_template, write  # the pipeline imports this module

    manifest_path = Path(cache_dir) / "analysis" / "manifest.json"
    if not manifest_path.is_file():
        return []
    manifest = _read(manifest_path)
    fv_path = Path(cache_dir) / "featureviz" / "manifest.json"
    fv_manifest = _read(fv_path) if fv_path.is_file() else []
    listed = []
    for name, model in sorted(manifest.get("models", {}).items()):
        if not model.get("tensors"):
            continue
        slug = model_slug(name)
        rows, files = cached_model_files(name, model, manifest, Path(cache_dir), fv_manifest)
        for rel, data in sorted(files.items()):
            write(site, f"models/{slug}/{rel}", data)
        info = model.get("info") or {}
        page = render_template(
            env, "model.html", site=config, site_raw=config.raw, root="../../",
            page_url=f"{config.site_url}models/{slug}/index.html", model_name=name, label=model.get("label", name),
            info=info, notes=model.get("notes", []), layers=rows, articles=_users(articles, name, slug),
            diverging=json.dumps(DIVERGING))
        write(site, f"models/{slug}/index.html", page)
        report.pages.append(f"models/{slug}/index.html")
        listed.append({"name": name, "label": model.get("label", name), "href": f"models/{slug}/index.html",
                       "layers": len(rows), "family": model.get("family", "")})
    return listed
