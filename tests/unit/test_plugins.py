"""Plug-in connectors: loading (broken, clashing, filtered) and the protocol they are read by."""

from __future__ import annotations

import asyncio
import logging
import threading
from importlib.metadata import EntryPoint
from typing import Any

import pytest

from adapters.connectors.plugins import GROUP, PluginConnector, load_connectors
from domain.errors import BackendUnavailable, InvalidConnection
from domain.sources import Column
from tests.fakes import FakeConnector
from tests.helpers import run

SECRET = "s3cr3t-value"


class Blocking:
    """Fields as attributes of objects; a blocking inspect."""

    class Field:
        def __init__(self, name: str, type: str, **more: Any) -> None:
            self.name, self.type = name, type
            self.__dict__.update(more)

    title = "Blocking plug-in"
    fields = (
        Field("table", "string", required=True, description="The table"),
        Field("token", "string", secret=True),
        Field("ratio", "number", default=0.5),
        Field("limit", "integer", default=10),
        Field("strict", "boolean", default=False),
    )

    def __init__(self) -> None:
        self.threads: list[str] = []

    def inspect(self, connection: dict[str, Any]) -> list[Any]:
        self.threads.append(threading.current_thread().name)
        if connection["table"] == "boom":
            raise RuntimeError(f"cannot log in with {connection.get('token')}")
        if connection["table"] == "gone":
            raise BackendUnavailable("table_not_found", "no table 'gone'")
        if connection["table"] == "odd":
            raise BackendUnavailable("made_up_reason", "something odd")
        return [Column("id", "integer", False), {"name": "ratio", "type": "real"}]


class Async:
    """Fields as mappings; an async inspect."""

    title = "Async plug-in"
    fields = [{"name": "table", "type": "string", "required": True}]

    async def inspect(self, connection: dict[str, Any]) -> list[dict[str, Any]]:
        await asyncio.sleep(0)
        if connection["table"] == "bad":
            return [{"name": "", "type": "text"}]
        if connection["table"] == "not-a-list":
            return "id"  # type: ignore[return-value]
        return [{"name": "a", "type": "text", "nullable": True}]


class Raises:
    title = "Broken"
    fields = ()

    def __init__(self) -> None:
        raise RuntimeError("cannot construct")


class BadFields:
    title = "Bad fields"
    fields = ({"name": "x", "type": "date"},)

    def inspect(self, connection: dict[str, Any]) -> list[Any]:
        return []


def entry(name: str, attribute: str) -> EntryPoint:
    return EntryPoint(name, f"{__name__}:{attribute}", GROUP)


def test_a_blocking_plugin_runs_off_the_event_loop_with_its_fields_checked() -> None:
    plugin = Blocking()
    connector = PluginConnector("blocking", plugin, "tdb-blocking==1.0")
    checked = run(connector.validate({"table": "t", "token": SECRET, "ratio": 2}))
    assert checked == {"table": "t", "token": SECRET, "ratio": 2, "limit": 10, "strict": False}
    columns = run(connector.inspect(checked))
    assert columns == [Column("id", "integer", False), Column("ratio", "real", None)]
    assert plugin.threads
    assert plugin.threads[0] != threading.current_thread().name
    assert [f.name for f in connector.fields if f.secret] == ["token"]
    with pytest.raises(InvalidConnection) as caught:
        run(connector.validate({"table": 1, "ratio": "x", "strict": 1, "other": 2}))
    assert sorted(e.field for e in caught.value.errors) == [
        "connection.other",
        "connection.ratio",
        "connection.strict",
        "connection.table",
    ]


def test_an_exception_is_backend_error_without_its_message() -> None:
    connector = PluginConnector("blocking", Blocking())
    with pytest.raises(BackendUnavailable) as caught:
        run(connector.inspect({"table": "boom", "token": SECRET}))
    assert caught.value.reason == "backend_error"
    assert SECRET not in str(caught.value)
    assert "log in" not in str(caught.value)
    assert "RuntimeError" in caught.value.detail


def test_tdbs_own_backend_unavailable_keeps_a_known_reason_only() -> None:
    connector = PluginConnector("blocking", Blocking())
    with pytest.raises(BackendUnavailable) as caught:
        run(connector.inspect({"table": "gone"}))
    assert (caught.value.reason, caught.value.detail) == ("table_not_found", "no table 'gone'")
    with pytest.raises(BackendUnavailable) as odd:
        run(connector.inspect({"table": "odd"}))
    assert odd.value.reason == "backend_error"


def test_an_async_plugin_is_awaited_and_its_answer_checked() -> None:
    connector = PluginConnector("async", Async())
    assert run(connector.inspect({"table": "t"})) == [Column("a", "text", True)]
    for table in ("bad", "not-a-list"):
        with pytest.raises(BackendUnavailable) as caught:
            run(connector.inspect({"table": table}))
        assert caught.value.reason == "backend_error"


def test_broken_and_clashing_plugins_are_left_out_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    found = [
        entry("blocking", "Blocking"),
        entry("async", "Async"),
        entry("raises", "Raises"),
        entry("badfields", "BadFields"),
        entry("missing", "NoSuchClass"),
        EntryPoint("nomodule", "tdb_no_such_module:Plugin", GROUP),
        entry("fake", "Async"),  # the built-in's type
        entry("async", "Blocking"),  # a second claim to a plug-in's type
    ]
    with caplog.at_level(logging.ERROR, logger="tdb.connectors"):
        registry = load_connectors([FakeConnector()], found=found)
    assert list(registry.types()) == ["async", "blocking", "fake"]
    assert registry.get("fake").origin == "builtin"
    assert registry.get("async").title == "Async plug-in"
    failed = {f.source_type: f.error for f in registry.failures()}
    assert set(failed) == {"raises", "badfields", "missing", "nomodule", "fake", "async"}
    assert "RuntimeError: cannot construct" in failed["raises"]
    assert "type must be one of" in failed["badfields"]
    assert "ModuleNotFoundError" in failed["nomodule"]
    assert "built-in" in failed["fake"]
    assert "another plug-in" in failed["async"]
    lines = [r for r in caplog.records if r.name == "tdb.connectors"]
    assert len(lines) == len(failed)
    assert all(r.levelno == logging.ERROR for r in lines)


def test_tdb_connectors_enables_only_the_types_it_names_and_reports_unknown_ones() -> None:
    found = [entry("blocking", "Blocking"), entry("raises", "Raises")]
    registry = load_connectors([FakeConnector()], enabled=["blocking", "nosuch"], found=found)
    assert list(registry.types()) == ["blocking"]
    # A plug-in not enabled is not even imported: its broken constructor is never reached.
    assert [f.source_type for f in registry.failures()] == ["nosuch"]
