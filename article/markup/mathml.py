"""TeX -> MathML at build time (no client-side math library).

latex2mathml builds an element tree and then *unescapes* its serialization, so ``\\text{<script>}`` (or a
``<meta http-equiv=refresh>``) used to reach the page as markup, and ``\\href``/``\\style`` as attributes. Here the
tree is serialized by our own code: text is always escaped (latex2mathml's numeric character references are kept),
only MathML presentation elements and harmless attributes pass, and anything else is an error at the TeX.

Converted formulas are kept in the render cache (``use_cache``/``save``: one entry per version of this module and of
latex2mathml), and latex2mathml is imported only for a formula that is not there: importing it costs ~25 ms
(it reads its own package metadata and pulls in urllib and ssl), more than a content-only edit's other math.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from xml.etree.ElementTree import Element

from .. import cache
from ..config import limits

# MathML Core presentation elements (what latex2mathml emits) and their harmless attributes.
ELEMENTS = frozenset("""math mrow mi mn mo ms mtext mspace msub msup msubsup munder mover munderover mfrac msqrt mroot
mstyle mtable mtr mtd mpadded mphantom menclose merror mfenced mmultiscripts mprescripts none semantics annotation
mlabeledtr maligngroup malignmark""".split())
ATTRIBUTES = frozenset("""xmlns display mathvariant displaystyle scriptlevel stretchy fence separator separators lspace
rspace accent accentunder linethickness columnalign rowalign columnspacing rowspacing columnlines rowlines frame
framespacing width height depth minsize maxsize movablelimits symmetric largeop form notation align equalrows
equalcolumns open close voffset columnspan rowspan mathcolor mathbackground mathsize bevelled""".split())
_CHARREF = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+);")


def _text(value: str) -> str:
    """Escape ``<``, ``>``, ``&`` and quotes; latex2mathml's numeric character references (``&#x0003C;``) stay."""
    parts = _CHARREF.split(value)
    out = []
    for i, part in enumerate(parts):
        out.append(f"&{part};" if i % 2 else html.escape(part, quote=True))
    return "".join(out)


def _serialize(el: Element, tex: str) -> str:
    tag = el.tag
    if tag not in ELEMENTS:
        raise ValueError(f"cannot convert TeX {tex!r}: it produces a <{tag}> element, which is not MathML")
    attrs = "".join(f' {k}="{_text(str(v))}"' for k, v in el.attrib.items() if k in ATTRIBUTES)
    inner = _text(el.text or "") + "".join(_serialize(c, tex) + _text(c.tail or "") for c in el)
    return f"<{tag}{attrs}>{inner}</{tag}>" if inner else f"<{tag}{attrs} />"


MAX_KEPT = 20_000  # formulas in the cache entry; beyond that it starts again (edits leave old formulas behind)
_converted: dict[str, str] = {}  # "<display> <tex>" -> MathML, this process (and what the cache entry held)
_entry: list = [None, False]  # [the cache entry in use, whether _converted grew since it was read]


def use_cache(cache_dir: Path | None) -> None:
    """Read the converted formulas kept in ``cache_dir`` (None: none, and nothing is saved)."""
    if cache_dir is None:  # --debug: nothing from the render cache, not even what this process read from it
        _converted.clear()
        _entry[:] = [None, False]
        return
    entry = cache.entry(cache_dir, "mathml", [Path(__file__).read_bytes(), cache.library_stamp("latex2mathml")])
    if entry != _entry[0]:
        kept = cache.load(entry, json.loads)
        if isinstance(kept, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in kept.items()):
            _converted.update(kept)
        _entry[:] = [entry, False]


def save() -> None:
    """Store the formulas converted since ``use_cache`` (only when there are new ones)."""
    entry, grew = _entry
    if entry is None or not grew:
        return
    if len(_converted) > MAX_KEPT:
        _converted.clear()
    cache.store(entry, json.dumps(_converted, sort_keys=True).encode())
    cache.keep_only(entry, "mathml")
    _entry[1] = False


def tex_to_mathml(tex: str, display: bool) -> str:
    """Return a ``<math>`` element; raises ``ValueError`` with latex2mathml's reason on bad TeX."""
    name = f"{int(display)} {tex.strip()}"
    if name not in _converted:  # converted in the build's worker, under the render time limit
        seconds = limits.render_timeout(60.0)
        _converted[name] = limits.run_author_text(_convert, tex, display, seconds=seconds, on_timeout=lambda info: (
            ValueError(f"cannot convert TeX {tex.strip()[:80]!r}: it did not finish within {seconds:g} s "
                       f"(${limits.TIMEOUT_ENV} raises the limit)")))
        _entry[1] = True
    return _converted[name]


def _convert(tex: str, display: bool) -> str:
    from latex2mathml.converter import convert_to_element

    try:
        tree = convert_to_element(tex.strip(), display="block" if display else "inline")
    except RecursionError:
        raise ValueError(f"cannot convert TeX {tex.strip()[:80]!r}: nested too deeply") from None
    except Exception as exc:  # latex2mathml raises a zoo of exception types
        raise ValueError(f"cannot convert TeX {tex.strip()!r}: {type(exc).__name__} {exc}") from None
    return _serialize(tree, tex.strip())
