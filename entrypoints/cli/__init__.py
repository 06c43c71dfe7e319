"""The `tdb` command: the same use cases as the HTTP API, driven from a terminal."""
