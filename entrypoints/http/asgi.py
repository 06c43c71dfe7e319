"""The ASGI app for servers (`uvicorn entrypoints.http.asgi:app`), configured from `TDB_*`."""

import gc
import sys

from entrypoints.container import build_container
from entrypoints.http.app import create_app
from entrypoints.logs import configure_logging
from entrypoints.settings import Settings

# The event loop shares the GIL with the threads that read, shape and encode big listings (on
# PostgreSQL, every full listing). A thread that wants the GIL waits up to this long for the
# holder to give it up: Python's default, 5 ms, costs the loop that much at every turn while a
# listing is being made.
GIL_SWITCH_INTERVAL = 0.001

_settings = Settings.from_env()
# A server's request lines leave a turn of the event loop at a time (`entrypoints.logs`); an app
# made in process (the tests' clients) writes each as its request ends.
configure_logging(_settings.log_format, _settings.secrets(), batch_request_lines=True)
app = create_app(build_container(_settings))

sys.setswitchinterval(GIL_SWITCH_INTERVAL)
# What exists now (modules, the app, the container) lives as long as the process: out of the
# collector's sight. A full collection holds the GIL, and with it the event loop, for as long as
# it walks the objects it watches; the thousands a big listing makes on a thread set one off
# now and then, and it then walks those alone, not the whole process (~100,000 objects more).
gc.collect()
gc.freeze()
