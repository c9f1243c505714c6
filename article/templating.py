"""Render an article's Markdown body as a sandboxed Jinja2 template, so numbers in prose come from data.

Delimiters: ``{{ expr }}`` and ``{% stmt %}`` as usual; comments are ``{## ... ##}`` (not ``{# #}``)
because ``{#id}`` is Markdown attribute-list syntax. Literal ``{{`` (e.g. in a code block) needs
``{% raw %}...{% endraw %}``.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from . import limits
from .errors import BuildError

_TEMPLATE_NAME = "<article>"
MAX_OUTPUT_CHARS = 20_000_000  # the rendered Markdown of one article


class _TooSlow(Exception):
    pass


class _TooBig(Exception):
    pass


UNAVAILABLE = "unavailable"  # a number the analysis could not give (e.g. a random baseline of a 1x1 kernel)


def fmt(value: Any, digits: int = 2) -> str:
    """Fixed-point number: ``{{ x | fmt(2) }}`` -> ``0.95``; None -> ``unavailable``."""
    return UNAVAILABLE if value is None else f"{_number(value):.{digits}f}"


def pct(value: Any, digits: int = 0) -> str:
    """Fraction as a percentage: ``{{ 0.953 | pct(1) }}`` -> ``95.3%``; None -> ``unavailable``."""
    return UNAVAILABLE if value is None else f"{100 * _number(value):.{digits}f}%"


def sig(value: Any, digits: int = 3) -> str:
    """Significant digits: ``{{ 0.0012345 | sig(2) }}`` -> ``0.0012``; None -> ``unavailable``."""
    return UNAVAILABLE if value is None else f"{_number(value):.{digits}g}"


def thousands(value: Any) -> str:
    """Integer with thousands separators: ``12345`` -> ``12,345``."""
    return f"{int(_number(value)):,}"


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise TypeError(f"expected a finite number, got {value!r}")
    return value


def make_env() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # output is Markdown; raw HTML is handled by the Markdown stage
        comment_start_string="{##",
        comment_end_string="##}",
        keep_trailing_newline=True,
    )
    env.filters.update(fmt=fmt, pct=pct, sig=sig, thousands=thousands)
    return env


def render_body(body: str, data: Mapping[str, Any], path: Path, first_line: int, seconds: float | None = None,
                max_chars: int = MAX_OUTPUT_CHARS, limit: float | None = None) -> str:
    """Render ``body`` with context ``{"data": data}``; errors name ``path:line`` of the source file. ``seconds`` and
    ``max_chars``: what is left of the article's limits when the body renders in parts (body_segments.py); ``limit``:
    the whole article's time limit, which an error states (default: ``seconds``)."""
    env = make_env()
    seconds = limits.render_timeout(60.0) if seconds is None else seconds
    try:
        template = env.from_string(body)
        template.name = _TEMPLATE_NAME
        with limits.time_limit(seconds, _TooSlow):
            out, size = [], 0
            for chunk in template.generate(data=data):
                size += len(chunk)
                if size > max_chars:
                    raise _TooBig()
                out.append(chunk)
            return "".join(out)
    except (_TooSlow, _TooBig) as exc:
        line = _template_line(exc.__traceback__)
        what = (f"did not finish within {limit or seconds:g} s (an endless loop? ${limits.TIMEOUT_ENV} raises the limit)"
                if isinstance(exc, _TooSlow) else f"produced more than {MAX_OUTPUT_CHARS // 10**6} million characters")
        raise BuildError(f"the article's template code {what}", path,
                         first_line + line - 1 if line else None) from None
    except jinja2.TemplateSyntaxError as exc:
        raise BuildError(f"template syntax error: {exc.message}", path,
                         first_line + (exc.lineno or 1) - 1) from None
    except BuildError:
        raise  # e.g. a data hook's missing analysis result
    except Exception as exc:  # UndefinedError, TypeError from filters, SecurityError, ...
        line = _template_line(exc.__traceback__)
        kind = "undefined name" if isinstance(exc, jinja2.UndefinedError) else "template error"
        raise BuildError(f"{kind}: {exc}", path,
                         first_line + line - 1 if line else None) from None


def _template_line(tb) -> int | None:
    """Jinja rewrites tracebacks so template frames carry the template line; take the innermost."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in ("<template>", _TEMPLATE_NAME):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


if __name__ == "__main__":  # pragma: no cover - manual check
    print(render_body(sys.stdin.read(), {}, Path("<stdin>"), 1))
