"""Offline weight analyses (torch lives here; the render side never imports this package eagerly)."""
