"""Render side: Markdown + Jinja2 -> static Distill-style site. Never imports torch."""
