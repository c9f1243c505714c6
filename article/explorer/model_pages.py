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
from pathlib import Path, PurePosixPath
from typing import Any

from analysis.core.codekey import code_key
from analysis.core.paths import inside

from .. import cache
from ..output import sitedir
from ..structure import theme
from ..structure.errors import BuildError
from ..structure.explorer_links import explorer_href, follow_selection, fragment, model_slug  # noqa: F401 (its API)
from ..structure.jsonio import read_record as _read
from . import explorer_data as xd
from . import explorer_examples as xx


def _picture(bases: tuple[Path, ...], rel: str, suffixes: tuple[str, ...] = (".png",)) -> bytes | None:
    """A cached picture named (by a cache record) relative to one of ``bases``; None when gone, of another kind, or
    when the name leads out of its base: a planted record must not publish e.g. /etc/passwd."""
    for base in bases:
        path = inside(base, rel)
        if path is not None and path.suffix in suffixes and path.is_file():
            return path.read_bytes()
    return None


def _image(cache_dir: Path, rel: str) -> bytes | None:
    """A feature visualization or first-layer picture: relative to the cache folder or its featureviz/ folder."""
    return _picture((cache_dir, cache_dir / "featureviz"), rel)


EXAMPLE_PICTURES = (".png", ".jpg")  # analysis/examples_stage.py: PNG sprites and pictures, JPEG photos and strips


def _example_picture(root: Path, rel: str) -> bytes | None:
    """A dataset-example picture named by an examples record, relative to the analysis folder."""
    return _picture((root,), rel, EXAMPLE_PICTURES)


def _record(root: Path, rel: Any) -> Any:
    """An analysis record named in the manifest (the freshness check verified the name and the bytes)."""
    path = inside(root, rel)
    if path is None:
        raise BuildError(f"the analysis manifest names {str(rel)[:200]!r}, outside the cache folder; run "
                         "`python build.py --clean`", root / "manifest.json")
    return _read(path)


def _models(manifest: Any, path: Path) -> dict[str, dict]:
    """The manifest's models, each pointing only at its own listed files (analysis.core.fingerprint.model_entry_ok, as the
    freshness check requires): also when no analysis is configured and nothing checked the manifest."""
    from analysis.core.fingerprint import model_entry_ok  # stdlib only: no torch

    models = manifest.get("models", {}) if isinstance(manifest, dict) else None
    files = manifest.get("files", []) if isinstance(manifest, dict) else None
    if isinstance(models, dict) and isinstance(files, list) and all(
            isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("sha256"), str) for f in files):
        listed = {f["path"] for f in files}
        bad = next((n for n, m in sorted(models.items(), key=lambda kv: str(kv[0]))
                    if not model_entry_ok(n, m, listed)), None)
        if bad is None:
            return models
        raise BuildError(f"model {str(bad)[:100]!r} of the analysis manifest points at files it did not write; "
                         "`python build.py --clean` recomputes it", path)
    raise BuildError("the analysis manifest has an unexpected shape; `python build.py --clean` recomputes it", path)


def _users(articles: list, name: str, slug: str) -> list[dict[str, str]]:
    """The articles that link to this model's page or declare the model in their front matter."""
    out = []
    for a in articles:
        declared = name in (a.source.meta.models or {})
        if declared or f"models/{slug}/index.html" in a.html:
            out.append({"title": a.source.meta.title, "href": f"../../{a.slug}/index.html"})
    return out


def _site_name(rel: str, name: str, model: dict) -> str:
    """A cached picture's name in the site without the folder of the model key it was computed for (the analysis
    keeps one per key): a reader's URL does not change with the cache's layout."""
    folder = model.get("folder")
    prefix = f"analysis/{folder}/" if isinstance(folder, str) else None
    return f"analysis/{name}/" + rel[len(prefix):] if prefix and rel.startswith(prefix) else rel


def reads_from(entries: list[dict], entry: dict) -> str | None:
    """The tensor whose output neurons ``entry``'s inputs are: the one ending at its source (a block's output, after
    the skip and activation) before a conv kernel inside that block that also feeds it."""
    feeding = [p for p in entries if p.get("next") == entry["id"]]
    exact = [p["id"] for p in feeding if p.get("layer") == entry.get("source")]
    return (exact or [p["id"] for p in feeding] or [None])[0]


def model_files(name: str, model: dict, cache_dir: Path, fv_manifest: list[dict]) -> tuple[list[dict], dict]:
    """(rows of the layer table, files relative to the model's folder) for one model of the manifest; a record of
    the wrong shape (damaged or planted) is one line naming the manifest, not a traceback."""
    try:
        return _model_files(name, model, cache_dir, fv_manifest)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise BuildError(f"model '{name}': an analysis record has an unexpected shape ({type(exc).__name__}: "
                         f"{str(exc)[:200]}); `python build.py --clean` recomputes it",
                         cache_dir / "analysis" / "manifest.json") from None


def _model_files(name: str, model: dict, cache_dir: Path, fv_manifest: list[dict]) -> tuple[list[dict], dict]:
    root = cache_dir / "analysis"
    entries = model["tensors"]
    records = {e["id"]: _record(root, e["file"]) for e in entries}
    listing = _record(root, model["neuron_featureviz"]["file"]) if model.get("neuron_featureviz") else None
    files: dict[str, bytes] = {}
    ex_layers, ex_inputs, ex_files = xx.model_examples(model, lambda rel: _record(root, rel),
                                                       lambda rel: _example_picture(root, rel), model["folder"])
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
                target = "img/" + _site_name(rel, name, model).replace("/", "_")
                files[target] = data
                payload["fv"][str(ch)] = target
        for n, paths in sorted(xd.factor_featureviz(listing, e["id"]).items()):
            pictures = [(rel, _image(cache_dir, rel)) for rel in paths]
            if n < payload["n"] and all(data is not None for _, data in pictures):
                for rel, data in pictures:
                    files["img/" + rel.replace("/", "_")] = data
                payload["ffv"][str(n)] = ["img/" + rel.replace("/", "_") for rel, _ in pictures]
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


def _key_parts(name: str, model: dict, manifest: dict, fv_manifest: list[dict], cache_dir: Path,
               code: str | None = None) -> list[str | bytes]:
    """Everything a model's explorer files depend on: this code (the code key of this module: its import closure,
    analysis/core/codekey.py; ``code`` when the caller has it), its manifest entry, the bytes of the records it reads (by
    the hashes the analysis listed, else read here) and its feature visualizations."""
    listed = {f["path"]: f["sha256"] for f in manifest.get("files", [])}
    parts: list[str | bytes] = [code or code_key(__name__, cache_dir=cache_dir),
                                json.dumps([name, model, [e for e in fv_manifest if e.get("model") == name]],
                                           sort_keys=True)]
    listing = [model["neuron_featureviz"]["file"]] if model.get("neuron_featureviz") else []
    for rel in [e["file"] for e in model["tensors"]] + [c["file"] for c in model.get("context", [])] + listing + \
            xx.record_files(manifest, model["folder"]):
        digest = listed.get(rel)
        if digest is None:
            path = inside(cache_dir / "analysis", rel)
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path and path.is_file() else "missing"
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
    from ..output.writer import page_parts, render_template, write

    manifest_path = Path(cache_dir) / "analysis" / "manifest.json"
    if not manifest_path.is_file():
        return []
    manifest = _read(manifest_path)
    fv_path = Path(cache_dir) / "featureviz" / "manifest.json"
    fv_manifest = _read(fv_path) if fv_path.is_file() else []
    fv_manifest = [e for e in fv_manifest if isinstance(e, dict)] if isinstance(fv_manifest, list) else []
    listed = []
    before = sitedir.recorded(cache_dir, previous, "models") if use_cache else None
    before = before if isinstance(before, dict) else {}
    kept, common, code = {}, None, code_key(__name__, cache_dir=cache_dir)
    for name, model in sorted(_models(manifest, manifest_path).items()):
        if not model.get("tensors"):
            continue
        slug = model_slug(name)
        users = _users(articles, name, slug)
        parts = _key_parts(name, model, manifest, fv_manifest, Path(cache_dir), code)
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
