"""Figure kinds. Every module here registers itself with ``registry.register`` on import."""
