"""The registry of `::: name attrs` block directives, in the manner of the figure registry: a directive registers a
function that turns its block into HTML, and the Markdown renderer (article/markup/renderer.py) looks it up by name. Adding one
touches only the module that registers it.

    @directives.register("note", width="l-body")
    def note(ctx, block, attrs, line):      # ctx: the article's renderer.Renderer
        return ctx.block_html(f'<div class="note {attrs["width"]}">{ctx.fragment(block.text, block.line + 1)}</div>')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

# (renderer, block, attrs with `width` filled in, file line) -> the directive's HTML, parked by the renderer
Handler = Callable[[Any, Any, dict[str, str], int], str]


@dataclass(frozen=True)
class Directive:
    name: str
    render: Handler
    width: str = "l-body"  # the layout class when the author gives no width=


DIRECTIVES: dict[str, Directive] = {}


def register(name: str, *, width: str = "l-body") -> Callable[[Handler], Handler]:
    def add(fn: Handler) -> Handler:
        if name in DIRECTIVES:
            raise ValueError(f"directive {name!r} is registered twice")
        DIRECTIVES[name] = Directive(name, fn, width)
        return fn
    return add
