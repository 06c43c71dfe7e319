"""The ASGI app for servers (`uvicorn entrypoints.http.asgi:app`), configured from `TDB_*`."""

from entrypoints.container import build_container
from entrypoints.http.app import create_app
from entrypoints.settings import Settings

app = create_app(build_container(Settings.from_env()))
