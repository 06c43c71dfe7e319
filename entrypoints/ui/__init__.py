"""The web UI for people at `/ui/`: server-rendered pages over the same use cases as the API."""

from entrypoints.ui.router import ui_router, ui_templates

__all__ = ["ui_router", "ui_templates"]
