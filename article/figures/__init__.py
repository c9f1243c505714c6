"""Figures: the registry (registry.py) and the kinds registered in it (every other module here registers its kinds
on import, or helps those that do: registry.discover imports them all), and how a registered figure becomes page HTML
and files (figrender.py) through the render cache (figure_cache.py, with what it read: reads.py)."""
