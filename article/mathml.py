"""TeX -> MathML at build time (no client-side math library).

latex2mathml builds an element tree and then *unescapes* its serialization, so ``\\text{<script>}`` (or a
``<meta http-equiv=refresh>``) used to reach the page as markup, and ``\\href``/``\\style`` as attributes. Here the
tree is serialized by our own code: text is always escaped (latex2mathml's numeric character references are kept),
only MathML presentation elements and harmless attributes pass, and anything else is an error at the TeX.
"""
from __future__ import annotations

import html
import re
from functools import lru_cache
from xml.etree.ElementTree import Element

from latex2mathml.converter import convert_to_element

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


@lru_cache(maxsize=4096)
def tex_to_mathml(tex: str, display: bool) -> str:
    """Return a ``<math>`` element; raises ``ValueError`` with latex2mathml's reason on bad TeX."""
    try:
        tree = convert_to_element(tex.strip(), display="block" if display else "inline")
    except RecursionError:
        raise ValueError(f"cannot convert TeX {tex.strip()[:80]!r}: nested too deeply") from None
    except Exception as exc:  # latex2mathml raises a zoo of exception types
        raise ValueError(f"cannot convert TeX {tex.strip()!r}: {type(exc).__name__} {exc}") from None
    return _serialize(tree, tex.strip())
