"""Unconditional updates made at once on one source, through the use case, by two handles on one
store as two worker processes hold it: every one applies (none is a 412), each once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, TypeVar

import pytest

from adapters.connectors.registry import StaticConnectorRegistry
from adapters.crypto import AesGcmCipher, generate_key
from adapters.system import RandomIds, SystemClock
from application.sources import (
    RegisterSource,
    RegisterSourceCommand,
    Retry,
    SourcePatch,
    UpdateSource,
    UpdateSourceCommand,
)
from domain.events import Action
from domain.keys import Principal, Scope
from domain.sources import Source
from tests.contract.stores import ADAPTERS, StoreFactory, Stores
from tests.contract.test_lifecycle import trail
from tests.fakes import FakeConnector
from tests.helpers import run

T = TypeVar("T")

pytestmark = pytest.mark.parametrize("adapter", ADAPTERS)

WRITER = Principal("tdbk_writer", {Scope.READ, Scope.WRITE})
UPDATES = 60
"""Updates per test, half through each handle."""


def _updates(
    stores: Stores, registry: StaticConnectorRegistry, cipher: AesGcmCipher
) -> UpdateSource:
    return UpdateSource(
        stores.sources,
        registry,
        cipher,
        stores.events,
        SystemClock(),
        RandomIds(),
        # Generous: this test asks that every update apply, not how soon on a loaded machine.
        retry=Retry(timeout=60),
    )


def _described(source: Source, i: int) -> UpdateSourceCommand:
    """An unconditional change of the description to one of its own: each one is a change."""
    return UpdateSourceCommand(WRITER, source.id, SourcePatch(description=f"writer {i}"))


def _awaited(
    stores: Stores, update: UpdateSource, commands: list[UpdateSourceCommand]
) -> list[Any]:
    """The commands' updates awaited together on a new event loop (as one server process)."""

    async def main() -> list[Any]:
        try:
            return await asyncio.gather(*(update(c) for c in commands), return_exceptions=True)
        finally:
            await stores.store.release()

    return asyncio.run(main())


def test_unconditional_updates_made_at_once_all_apply(new_stores: StoreFactory) -> None:
    registry = StaticConnectorRegistry([FakeConnector()])
    cipher = AesGcmCipher(generate_key())
    with new_stores.shared(2) as handles:
        register = RegisterSource(handles[0].sources, registry, cipher, SystemClock(), RandomIds())
        source = run(
            register(
                RegisterSourceCommand(
                    WRITER, "orders", "fake", {"table": "orders", "password": "pw"}
                )
            )
        )
        commands = [_described(source, i) for i in range(UPDATES)]
        outcomes: list[list[Any]] = [[], []]

        def worker(k: int) -> None:
            update = _updates(handles[k], registry, cipher)
            outcomes[k] = _awaited(handles[k], update, commands[k::2])

        workers = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        failures = [o for o in outcomes[0] + outcomes[1] if isinstance(o, BaseException)]
        assert failures == []
        final = handles[1].sources.get(source.id)
        assert final.version == 1 + UPDATES
        changes = trail(handles[0].events, action=Action.SOURCE_UPDATED)
        assert sorted(e.changed for e in changes) == [("description",)] * UPDATES
        assert final.description in {c.patch.description for c in commands}
