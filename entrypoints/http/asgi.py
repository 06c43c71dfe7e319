"""The ASGI app for servers (`uvicorn entrypoints.http.asgi:app`), configured from `TDB_*`."""

from entrypoints.container import build_container
from entrypoints.http.app import create_app
from entrypoints.logs import configure_logging
from entrypoints.settings import Settings

_settings = Settings.from_env()
configure_logging(_settings.log_format)
app = create_app(build_container(_settings))
