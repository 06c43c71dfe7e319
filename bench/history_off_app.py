"""tdb with the schema history's store taken out of the inspection path: the baseline.

The same app as `entrypoints.http.asgi`, built the same way on the same store, except that the
newest snapshot's fingerprint is known without asking the store (`BENCH_FINGERPRINT`): an
inspection that finds the columns unchanged then costs exactly what it cost before there was a
history. Any change would need the real store, so this app refuses to record one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from uuid import UUID

from dependency_injector import providers

from domain.history import SchemaSnapshot, SnapshotHead
from entrypoints.container import build_container
from entrypoints.http.app import create_app
from entrypoints.logs import configure_logging
from entrypoints.settings import Settings


class KnownHead:
    """A snapshot store whose newest snapshot is known in advance, for every source."""

    def __init__(self, printed: str) -> None:
        self._head = SnapshotHead(1, printed)

    def head(self, source_id: UUID) -> SnapshotHead | None:
        return self._head

    def latest(self, source_id: UUID) -> SchemaSnapshot | None:
        raise RuntimeError("the baseline records nothing: the columns must not change")

    def append(self, snapshot: SchemaSnapshot) -> bool:
        raise RuntimeError("the baseline records nothing: the columns must not change")

    def newest_first(
        self, source_id: UUID, limit: int, before: int | None = None
    ) -> Sequence[SchemaSnapshot]:
        return []


# As `entrypoints.http.asgi` builds its app, but for the one override.
_settings = Settings.from_env()
configure_logging(_settings.log_format)
container = build_container(_settings)
container.history.override(providers.Object(KnownHead(os.environ["BENCH_FINGERPRINT"])))
app = create_app(container)
