"""Bring-your-own models named in articles' front matter, checked without torch: the spec's shape, the weights file,
where the factory may be imported from (the article's folder, or site.yml's `factories:` allow-list), and one
definition per model name across articles. Errors name the article's file and the field's line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.core.factories import is_system_module, local_module_file, split_factory, top_module
from analysis.core.paths import safe_component

from ..structure.errors import BuildError
from . import limits, yamlcache
from .dataset_spec import check_dataset
from .frontmatter import parse, split
from .recipe_spec import field_lines, validate_recipe
from .site import SiteConfig


def factory_allow_list(root: Path, config: SiteConfig) -> set[str]:
    """site.yml `factories:`: "package.module:callable" or "package.module" entries that any article may use as a
    bring-your-own factory besides the modules in its own folder."""
    value = config.raw.get("factories") or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise BuildError("field 'factories' must be a list of 'package.module:callable' or 'package.module' "
                         "strings", root / "site.yml")
    return {v.strip() for v in value}


def _local_module(factory: str, folder: Path) -> bool:
    """The factory's top-level module is a file or package in ``folder`` (and not a standard-library name)."""
    top = top_module(factory)
    return not is_system_module(top) and local_module_file(top, folder) is not None


def byo_models(root: Path, config: SiteConfig, yaml_cache: Path | None = None) -> list[dict[str, Any]]:
    """Bring-your-own models named in articles' front matter: {name: {factory, weights, kwargs, image_size}}.

    Checks what can be checked without torch (spec shape, weights file present and non-empty), so these
    mistakes fail fast with the article's file:line.
    """
    allowed = factory_allow_list(root, config)
    out = []
    seen: dict[str, tuple[Any, str]] = {}  # model name -> (what defines it, "file:line" of its declaration)
    zoo = (config.raw.get("analysis") or {}).get("models") if isinstance(config.raw.get("analysis"), dict) else None
    site_models = f"{root / 'site.yml'} (analysis.models)"
    folders: dict[str, tuple[str, str]] = {  # a model's folder (casefolded) -> (its name, where it was declared)
        safe_component(n).casefold(): (n, site_models) for n in (zoo if isinstance(zoo, list) else [])
        if isinstance(n, str)}
    for slug in config.articles:
        path = root / "content" / slug / "index.md"
        try:
            limits.regular_file(path, "article")  # a FIFO would block the read; a huge file is refused
            text = path.read_text(encoding="utf-8")
        except (BuildError, OSError, UnicodeDecodeError):
            continue  # the render stage reports unreadable articles with their own message
        meta = parse(text, path, yaml_cache).meta
        lines, fields = {}, {}
        if meta.models:
            yaml_text = split(text, path)[0]
            fields = yamlcache.parsed(yaml_cache, f"model-lines-{slug}", yaml_text, lambda: field_lines(yaml_text))
            lines = {m: n for (m, f), n in fields.items() if f is None}
        for name, spec in sorted((meta.models or {}).items(), key=lambda kv: str(kv[0])):
            if not isinstance(spec, dict) or not ({"factory", "weights"} & set(spec)):
                continue  # free-form model notes for figures, not a model to load
            if not isinstance(name, str) or not name.strip():
                raise BuildError(f"front matter model name {name!r} must be a string (quote it)", path,
                                 meta.lines.get("models"))

            def fail(msg: str) -> BuildError:
                return BuildError(f"front matter model '{name}' {msg}", path, lines.get(str(name)))

            factory = spec.get("factory")
            if split_factory(factory) is None:
                raise fail(f"needs factory: 'package.module:callable', got {factory!r}")
            if not isinstance(spec.get("weights"), str) or not spec["weights"].strip():
                raise fail("needs weights: a file path relative to the article")
            if not isinstance(spec.get("kwargs") or {}, dict):
                raise fail(f"kwargs must be a mapping, got {type(spec['kwargs']).__name__}")
            size = spec.get("image_size")
            if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 1024):
                raise fail(f"image_size must be an integer from 8 to 1024, got {size!r:.40}")
            if "\0" in spec["weights"]:
                raise fail("weights: the path contains a NUL character")
            weights = (path.parent / spec["weights"]).resolve()
            if not weights.exists():
                raise fail(f"weights file {weights} not found")
            if not weights.is_file():
                kind = ("a folder" if weights.is_dir() else "a FIFO (named pipe)" if weights.is_fifo()
                        else "not a regular file")
                raise fail(f"weights file {weights} is {kind}, not a regular file")
            if weights.stat().st_size == 0:
                raise fail(f"weights file {weights} is empty (0 bytes)")
            dataset, signature = check_dataset(spec.get("dataset", "photos"), path.parent, path,
                                               f"front matter model '{name}' dataset",
                                               fields.get((str(name), "dataset")) or lines.get(str(name)))

            def fail_at(msg: str, field: str | None) -> BuildError:
                line = fields.get((str(name), field)) if field else None
                return BuildError(f"front matter model '{name}' {msg}", path, line or lines.get(str(name)))

            recipe = validate_recipe(spec.get("recipe"), fail_at)
            where = f"{path}:{lines.get(str(name))}" if lines.get(str(name)) else str(path)
            local = _local_module(factory, path.parent)
            if not local and factory not in allowed and factory.split(":")[0] not in allowed:
                raise fail(f"factory {factory!r}: module {factory.split(':')[0]!r} is not a module in the article's "
                           f"folder; factories must be defined there or listed under 'factories:' in site.yml")
            defines = (factory, str(weights), spec.get("kwargs") or {}, size, dataset, recipe,
                       str(path.parent.resolve()) if local else None)
            folder = safe_component(name)
            other = folders.setdefault(folder.casefold(), (name, where))
            if other[0] != name or other[1] == site_models:
                raise fail(f"and model '{other[0]}' ({other[1]}) would share the folder '{folder}' (names become "
                           "file names by one rule: letters, digits, '.', '_', '-'; case does not count); rename one")
            if name in seen:
                if seen[name][0] != defines:
                    raise BuildError(f"front matter model '{name}' is declared differently in {seen[name][1]} and "
                                     f"{where} (factory, weights, kwargs, image_size, dataset or recipe differ); give the "
                                     "models different names", path, lines.get(str(name)))
                continue  # the same model, declared by two articles: analysed once
            seen[name] = (defines, where)
            out.append({"name": name, "factory": factory, "weights": str(weights), "dataset": dataset,
                        "dataset_signature": signature,
                        "kwargs": spec.get("kwargs") or {}, "image_size": size, "recipe": recipe,
                        "field_lines": {f: n for (m, f), n in fields.items() if m == str(name) and f is not None},
                        # The article's folder: the factory is imported from it (and only from it); None for a
                        # factory on the site's allow-list, imported from the installed packages.
                        "search_path": str(path.parent) if local else None,
                        "article": str(path), "line": lines.get(str(name))})
    return out
