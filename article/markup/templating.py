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

from analysis.core import deadline

from ..config import limits
from ..structure.errors import BuildError

_TEMPLATE_NAME = "<article>"
MAX_OUTPUT_CHARS = 20_000_000  # the rendered Markdown of one article


class _TooSlow(Exception):
    pass


class TemplateTimeout(BuildError):
    """The article's template code ran past the time limit (rendering it again in another way would too)."""


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
    the whole article's time limit, which an error states (default: ``seconds``).

    Compiling and rendering run in the build's worker process (analysis.core.deadline), which is killed past the limit:
    Jinja folds constant expressions while it compiles, in C, where no alarm reaches (``{{ 9 ** (9 ** 9) }}``).
    ``data`` stays here: the worker asks for each hook's value by name."""
    seconds = limits.render_timeout(60.0) if seconds is None else seconds

    def too_slow(info: dict) -> BuildError:
        return TemplateTimeout(_too_slow(limit or seconds), path, first_line)

    return limits.run_author_text(_render_here, body, path, first_line, seconds, max_chars, limit,
                                  seconds=seconds, on_timeout=too_slow, answer=lambda *q: _answer(data, *q))


def _too_slow(seconds: float) -> str:
    return (f"the article's template code did not finish within {seconds:g} s (an endless loop, or a huge number "
            f"to compute? ${limits.TIMEOUT_ENV} raises the limit)")


def _answer(data: Mapping[str, Any], what: str, *args: Any) -> Any:
    """The build's side of the worker's ``data``: a hook's value by name (a KeyError is an undefined name)."""
    if what == "get":
        return data[args[0]]
    if what == "contains":
        return args[0] in data
    return list(data) if what == "keys" else len(data)


class _Data(Mapping):
    """``data`` inside the worker: each hook's value is asked of the build once (data hooks read the analysis cache
    and record what they read there)."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            self._values[name] = deadline.ask("get", name)
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return deadline.ask("contains", name)

    def __iter__(self):
        return iter(deadline.ask("keys"))

    def __len__(self) -> int:
        return deadline.ask("len")


_Data.__module__, _Data.__name__ = "builtins", "data"  # Jinja's messages: "'data object' has no attribute 'x'"


def _render_here(body: str, path: Path, first_line: int, seconds: float, max_chars: int,
                 limit: float | None) -> str:
    """render_body's work, in the worker: compile and render under the alarm, which names the line of a Python-level
    endless loop (the kill behind it stops the rest)."""
    env = make_env()
    try:
        with limits.time_limit(seconds, _TooSlow):
            template = env.from_string(body)
            template.name = _TEMPLATE_NAME
            out, size = [], 0
            for chunk in template.generate(data=_Data()):
                size += len(chunk)
                if size > max_chars:
                    raise _TooBig()
                out.append(chunk)
            return "".join(out)
    except (_TooSlow, _TooBig) as exc:
        line = _template_line(exc.__traceback__)
        where = first_line + line - 1 if line else first_line
        if isinstance(exc, _TooSlow):
            raise TemplateTimeout(_too_slow(limit or seconds), path, where) from None
        raise BuildError(f"the article's template code produced more than {MAX_OUTPUT_CHARS // 10**6} million "
                         "characters", path, where) from None
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
