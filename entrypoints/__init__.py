"""Entrypoints: the Litestar HTTP app, the `tdb` CLI, and the container that wires them."""
