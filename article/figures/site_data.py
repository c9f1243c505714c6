"""`data.site.*` in article prose: the site's own facts from site.yml (its title, address and source repository)."""
from __future__ import annotations

from typing import Any

from .registry import FigureContext, register_data


@register_data("site")
def site(ctx: FigureContext) -> dict[str, Any]:
    return {"title": ctx.site.get("title"), "url": ctx.site.get("site_url"), "repository": ctx.site.get("repository")}
