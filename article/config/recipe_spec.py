"""Validate a front-matter model's `recipe:` without torch, so a typo fails fast at its file:line.

Shape and range checks only; whether a named layer or block exists is checked by the analysis (it needs the
model) and reported against the same front matter. Field meanings: analysis.recipes.RecipeSpec and
article/README.md.
"""
from __future__ import annotations

from typing import Any, Callable

from analysis.core.spec import QUALITY_PRESETS

FIELDS = ("layers", "expansions", "context", "first_layer", "featureviz")
CONTEXT_FIELDS = {"weights": str, "outputs": int, "inputs": int, "neurons": list, "directions": int, "read": list,
                  "read_inputs": int}
LIMITS = {"outputs": (1, 32), "inputs": (1, 32), "directions": (0, 8), "read_inputs": (1, 12)}
NEURON_LISTS = {"neurons": 32, "read": 8}  # lists of output neuron ids, and how long each may be
FEATUREVIZ_PRESETS = tuple(QUALITY_PRESETS)
FEATUREVIZ_LIMITS = {"size": (16, 256), "steps": (1, 2048)}
MAX_ITEMS = 200

Fail = Callable[[str, str | None], Exception]  # (message, field) -> the error to raise


def _names(value: Any, field: str, fail: Fail) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise fail(f"recipe.{field} must be a list of layer names, got {value!r:.80}", field)
    if len(value) > MAX_ITEMS:
        raise fail(f"recipe.{field} has {len(value)} entries (at most {MAX_ITEMS})", field)
    return [v.strip() for v in value]


def _int(value: Any, where: str, lo: int, hi: int, field: str, fail: Fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise fail(f"{where} must be an integer from {lo} to {hi}, got {value!r:.40}", field)
    return value


def _expansion(text: str, fail: Fail) -> str:
    if text == "blocks":
        return text
    parts = [p.strip() for p in text.split("->")]
    if len(parts) != 2 or not all(parts):
        raise fail(f"recipe.expansions entry {text!r:.80} must look like 'lower -> upper' (or be 'blocks')",
                   "expansions")
    return f"{parts[0]} -> {parts[1]}"


def _context(value: Any, fail: Fail) -> list[dict]:
    if not isinstance(value, list):
        raise fail(f"recipe.context must be a list of {{weights: ...}} mappings, got {value!r:.80}", "context")
    out = []
    for i, item in enumerate(value[: MAX_ITEMS + 1]):
        where = f"recipe.context[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("weights"), str) or not item["weights"].strip():
            raise fail(f"{where} must be a mapping with weights: 'lower -> upper' or a conv name", "context")
        unknown = sorted(set(map(str, item)) - set(CONTEXT_FIELDS))
        if unknown:
            raise fail(f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(CONTEXT_FIELDS)})",
                       "context")
        clean: dict[str, Any] = {"weights": item["weights"].strip()}
        if "->" in clean["weights"]:
            clean["weights"] = _expansion(clean["weights"], fail)
        for key, (lo, hi) in LIMITS.items():
            if key in item:
                clean[key] = _int(item[key], f"{where}.{key}", lo, hi, "context", fail)
        for key, most in NEURON_LISTS.items():
            if key not in item:
                continue
            neurons = item[key]
            if not isinstance(neurons, list) or not 1 <= len(neurons) <= most:
                raise fail(f"{where}.{key} must be a list of 1 to {most} output neuron indices", "context")
            clean[key] = [_int(n, f"{where}.{key}", 0, 1_000_000, "context", fail) for n in neurons]
        out.append(clean)
    if len(value) > MAX_ITEMS:
        raise fail(f"recipe.context has {len(value)} entries (at most {MAX_ITEMS})", "context")
    return out


def _featureviz(value: Any, fail: Fail) -> dict | str:
    if isinstance(value, str):
        if value not in FEATUREVIZ_PRESETS:
            raise fail(f"recipe.featureviz must be one of {', '.join(FEATUREVIZ_PRESETS)} or "
                       f"{{size, steps}}, got {value!r:.40}", "featureviz")
        return value
    if not isinstance(value, dict):
        raise fail(f"recipe.featureviz must be a preset name or {{size, steps}}, got {value!r:.40}", "featureviz")
    unknown = sorted(set(map(str, value)) - set(FEATUREVIZ_LIMITS))
    if unknown:
        raise fail(f"recipe.featureviz: unknown field(s) {', '.join(unknown)} (known: size, steps)", "featureviz")
    return {k: _int(value[k], f"recipe.featureviz.{k}", lo, hi, "featureviz", fail)
            for k, (lo, hi) in FEATUREVIZ_LIMITS.items() if k in value}


def validate_recipe(value: Any, fail: Fail) -> dict[str, Any]:
    """The checked, normalized recipe (JSON-able, for the analysis config and its fingerprint)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail(f"recipe must be a mapping with any of {', '.join(FIELDS)}, got {value!r:.80}", None)
    unknown = sorted(set(map(str, value)) - set(FIELDS))
    if unknown:
        raise fail(f"recipe: unknown field(s) {', '.join(unknown)} (known: {', '.join(FIELDS)})", unknown[0])
    out: dict[str, Any] = {}
    if "layers" in value:
        out["layers"] = _names(value["layers"], "layers", fail)
    if "expansions" in value:
        out["expansions"] = [_expansion(e, fail) for e in _names(value["expansions"], "expansions", fail)]
    if "context" in value:
        out["context"] = _context(value["context"], fail)
    if "first_layer" in value:
        if not isinstance(value["first_layer"], str) or not value["first_layer"].strip():
            raise fail(f"recipe.first_layer must be a conv name, got {value['first_layer']!r:.40}", "first_layer")
        out["first_layer"] = value["first_layer"].strip()
    if "featureviz" in value:
        fv = _featureviz(value["featureviz"], fail)
        out["featureviz"] = fv
    return out


def field_lines(yaml_text: str) -> dict[tuple[str, str | None], int]:
    """(model name, field) -> file line of `models.<name>.<field>` and `models.<name>.recipe.<field>`
    (recipe fields win), and (model name, None) -> the line of `models.<name>` itself, for error messages. The YAML
    text starts on file line 2."""
    import yaml

    from .yamlsafe import SAFE_LOADER  # libyaml's parser when present: the pure-Python one took ~2 ms per article

    try:
        node = yaml.compose(yaml_text, Loader=SAFE_LOADER)
    except yaml.YAMLError:
        return {}
    out: dict[tuple[str, str | None], int] = {}

    def pairs(n):
        return n.value if isinstance(n, yaml.MappingNode) else []

    for key, value in pairs(node):
        if getattr(key, "value", None) != "models":
            continue
        for mkey, mval in pairs(value):
            out[(str(mkey.value), None)] = mkey.start_mark.line + 2
            for fkey, fval in pairs(mval):
                out[(str(mkey.value), str(fkey.value))] = fkey.start_mark.line + 2
                if fkey.value == "recipe":
                    for rkey, _ in pairs(fval):
                        out[(str(mkey.value), str(rkey.value))] = rkey.start_mark.line + 2
    return out
