"""The `dataset:` of a model (front matter) or of the site (site.yml `analysis: dataset:`), and site.yml's
`analysis: examples:` budget, checked without torch so that a bad folder fails fast with its file and line.
Folders are read by analysis/core/image_sets.py (torch-free)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from analysis.core.spec import EXAMPLES_SETTINGS

from ..structure.errors import BuildError

EXAMPLES_LIMITS = {"top": (1, 32), "per_image": (1, 8), "count": (1, 10**9), "seconds": (0, 10**7)}


def check_examples(value: Any, site: Path) -> dict[str, Any]:
    """site.yml `analysis.examples`: {top, per_image, count, seconds} (analysis.examples_stage.SETTINGS)."""
    if not isinstance(value, dict) or set(value) - set(EXAMPLES_LIMITS):
        raise BuildError("field 'analysis.examples' must be a mapping {top: examples per neuron, per_image: at most "
                         "this many from one image, count: images in all, seconds: per model and build}, got "
                         f"{value!r:.80}", site, site_line(site.parent, "examples"))
    for key, v in value.items():
        lo, hi = EXAMPLES_LIMITS[key]
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        if not number or not lo <= v <= hi or (key == "seconds" and v <= 0) or (key != "seconds" and v != int(v)):
            what = "a number of seconds above 0" if key == "seconds" else "an integer"
            raise BuildError(f"field 'analysis.examples.{key}' must be {what} up to {hi}"
                             + (f" (at least {lo})" if key != "seconds" else "") + f", got {v!r:.40}", site,
                             site_line(site.parent, "examples"))
    # The defaults filled in, so that writing one out in site.yml does not change the analysis fingerprint.
    return {k: (float(v) if k == "seconds" else int(v)) for k, v in {**EXAMPLES_SETTINGS, **value}.items()
            if v is not None}


def check_dataset(value: Any, base: Path, where: Path, field: str,
                  line: int | Callable[[], int | None] | None) -> tuple[str, str | None]:
    """A `dataset:` value: photos, mnist or a folder of JPEG/PNG images (relative to `base`, or absolute), checked
    (missing, unreadable, empty, or holding other files: one line naming `where`:`line`; `line` may be a function,
    called only then). Returns (photos, mnist or the folder's absolute path; for a folder its listing signature)."""
    from analysis.core import image_sets

    if callable(line):
        where_line = line

        def line_now() -> int | None:
            return where_line()
    else:
        def line_now() -> int | None:
            return line

    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise BuildError(f"{field} must be photos, mnist or a folder of JPEG/PNG images, got {value!r:.60}", where,
                         line_now())
    if image_sets.is_named(value):
        return value, None
    folder = image_sets.folder_path(value, base).resolve()
    try:
        return str(folder), image_sets.folder_signature(folder)
    except image_sets.DatasetError as exc:
        raise BuildError(f"{field}: {exc}", where, line_now()) from None
    except OSError as exc:
        raise BuildError(f"{field}: dataset folder {folder}: {exc.strerror or exc}", where, line_now()) from None


def site_line(root: Path, key: str) -> int | None:
    """The line of `analysis.<key>` in site.yml, for error messages (None when it cannot be told)."""
    import yaml

    try:
        node = yaml.compose((root / "site.yml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    for k, v in getattr(node, "value", []) if isinstance(node, yaml.MappingNode) else []:
        if getattr(k, "value", None) == "analysis" and isinstance(v, yaml.MappingNode):
            for k2, _ in v.value:
                if getattr(k2, "value", None) == key:
                    return k2.start_mark.line + 1
    return None
