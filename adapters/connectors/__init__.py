"""Connectors: one module per source type, and the registry that names them."""
