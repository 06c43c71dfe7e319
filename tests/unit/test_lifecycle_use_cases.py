"""Update, connection tests, audit events and conditional deletes, on in-memory adapters."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import attrs
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adapters.connectors.csv import CsvConnector
from adapters.connectors.postgres import PostgresConnector
from application.events import ListEvents, ListEventsQuery
from application.keys import CreateApiKey, RevokeApiKey
from application.sources import (
    RETRY_PAUSE_MAX,
    CheckNewConnection,
    CheckNewConnectionCommand,
    CheckSourceConnection,
    CheckSourceConnectionQuery,
    DeleteSource,
    DeleteSourceCommand,
    GetSource,
    GetSourceQuery,
    Retry,
    UpdateSource,
)
from domain.errors import (
    DuplicateSourceName,
    InvalidInput,
    PermissionDenied,
    SourceNotFound,
    StoreUnavailable,
    UnknownSourceType,
    VerificationFailed,
    VersionMismatch,
)
from domain.events import Action, Event, EventFilter
from domain.keys import ALL_SCOPES, Principal, Scope
from domain.sources import (
    MASK,
    IfMatch,
    PageKey,
    Source,
    SourceFilter,
    SourcePage,
    SourceStamp,
    SourceSummary,
    name_errors,
    normalized,
    parse_if_match,
    tags_errors,
)
from entrypoints.operator import OPERATOR, OPERATOR_MASKED
from entrypoints.requests import update_command
from tests.builders import ADMIN, READER, WRITER, register
from tests.helpers import Synced
from tests.unit.conftest import World, in_clear, new_world


def update(world: World, source: Source, patch: Any, actor: Principal = ADMIN, **kw: Any) -> Source:
    return update_by_id(world, source.id, patch, actor, **kw)


def update_by_id(
    world: World, source_id: uuid.UUID, patch: Any, actor: Principal = ADMIN, **kw: Any
) -> Source:
    answer = answer_by_id(world, source_id, patch, actor, **kw)
    assert isinstance(answer, Source), "an actor that may read is answered the source"
    return answer


def answer_by_id(
    world: World, source_id: uuid.UUID, patch: Any, actor: Principal = ADMIN, **kw: Any
) -> Source | SourceStamp:
    use_case = Synced(
        UpdateSource(
            world.sources, world.connectors, world.cipher, world.events, world.clock, world.ids
        )
    )
    # The patch as a client sends it, decoded as every entrypoint decodes one.
    return use_case(update_command(actor, source_id, patch, **kw))


def actions(world: World) -> list[Action]:
    return [e.action for e in world.events.list(EventFilter()).events]


def test_registration_starts_at_version_1_updated_as_registered(world: World) -> None:
    source = register(world)
    assert source.version == 1
    assert (source.updated_at, source.updated_by) == (source.registered_at, source.registered_by)
    (event,) = world.events.list(EventFilter()).events
    assert (event.action, event.source_id, event.source_name, event.actor) == (
        Action.SOURCE_REGISTERED,
        source.id,
        "orders",
        "tdbk_admin",
    )


def test_an_update_moves_version_time_and_author_and_records_the_paths(world: World) -> None:
    source = register(world, tags=["a"])
    updated = update(
        world,
        source,
        {"description": "d", "tags": ["b"], "connection": {"port": 7}},
        actor=WRITER,
    )
    assert updated.version == 2
    assert updated.updated_by == "tdbk_writer"
    assert updated.updated_at > source.updated_at
    assert updated.registered_at == source.registered_at
    assert updated.tags == ("b",)
    assert dict(updated.connection) == {"table": "orders", "password": MASK, "port": 7}
    assert world.sources.get(source.id).version == 2
    last = world.events.list(EventFilter(action=Action.SOURCE_UPDATED)).events[-1]
    assert last.changed == ("description", "tags", "connection.port")
    assert last.actor == "tdbk_writer"


@pytest.mark.parametrize("kept", [{}, {"password": MASK}, {"table": "orders"}])
def test_a_secret_absent_or_masked_keeps_its_stored_value(
    world: World, kept: dict[str, Any]
) -> None:
    source = register(world)
    before = world.sources.get(source.id).connection["password"]
    # (By a key that is shown no secret: showing one in clear would record a read.)
    result = update(world, source, {"connection": kept}, actor=WRITER)
    assert result.version == 1, "nothing changed"
    assert world.sources.get(source.id).connection["password"] == before
    assert actions(world) == [Action.SOURCE_REGISTERED]


def test_a_new_secret_is_encrypted_and_named_never_valued(world: World) -> None:
    source = register(world)
    update(world, source, {"connection": {"password": "n3w"}})
    stored = world.sources.get(source.id).connection["password"]
    assert world.cipher.decrypt(stored) == "n3w"
    event = world.events.list(EventFilter(action=Action.SOURCE_UPDATED)).events[0]
    assert event.changed == ("connection.password",)
    assert "n3w" not in repr(event)


def test_null_returns_optional_fields_to_their_defaults(world: World) -> None:
    source = register(world, description="d", tags=["x"], connection={"table": "t", "port": 9})
    result = update(
        world, source, {"description": None, "tags": None, "connection": {"port": None}}
    )
    assert (result.description, result.tags, result.connection["port"]) == ("", (), 1)
    null_password = update(world, result, {"connection": {"password": None}})
    assert "password" not in null_password.connection


@pytest.mark.parametrize(
    ("patch", "fields"),
    [
        ([1], ["body"]),
        ("x", ["body"]),
        ({"id": "x", "version": 3, "source_type": "csv"}, ["id", "source_type", "version"]),
        ({"registered_by": "me", "nope": 1}, ["nope", "registered_by"]),
        ({"name": None}, ["name"]),
        ({"name": ""}, ["name"]),
        ({"name": 5, "tags": "x", "description": 1}, ["name", "description", "tags"]),
        ({"connection": None}, ["connection"]),
        ({"connection": []}, ["connection"]),
        ({"connection": {"table": None}}, ["connection.table"]),
        ({"connection": {"port": "x", "unknown": 1}}, ["connection.unknown", "connection.port"]),
    ],
)
def test_bad_patches_name_the_field_and_change_nothing(
    world: World, patch: Any, fields: list[str]
) -> None:
    source = register(world)
    with pytest.raises(InvalidInput) as invalid:
        update(world, source, patch)
    assert sorted(e.field for e in invalid.value.errors) == sorted(fields)
    assert world.sources.get(source.id).version == 1
    assert actions(world) == [Action.SOURCE_REGISTERED]


def test_a_taken_name_is_a_conflict(world: World) -> None:
    register(world, name="a")
    second = register(world, name="b")
    with pytest.raises(DuplicateSourceName):
        update(world, second, {"name": "a"})


def test_if_match_admits_listed_versions_and_refuses_others(world: World) -> None:
    source = register(world)
    with pytest.raises(VersionMismatch) as stale:
        update(world, source, {"description": "x"}, if_match=IfMatch(frozenset({2})))
    assert stale.value.current_version == 1
    assert update(world, source, {"description": "x"}, if_match=IfMatch(frozenset({1, 5})))
    assert update(world, source, {"description": "y"}, if_match=IfMatch()).version == 3


def test_a_stale_if_match_is_refused_even_for_a_patch_that_changes_nothing(world: World) -> None:
    source = register(world)
    update(world, source, {"description": "x"})
    with pytest.raises(VersionMismatch):
        update(world, source, {}, if_match=parse_if_match('"1"'))


# --- a kept secret follows its target ---------------------------------------------------------


@pytest.mark.parametrize(
    "moved",
    [
        {"host": "elsewhere.test"},
        {"host": "elsewhere.test", "password": MASK},
        {"host": "elsewhere.test", "table": "orders"},
    ],
)
@pytest.mark.parametrize("verify", [False, True])
def test_a_kept_secret_does_not_follow_a_new_target_for_a_key_without_secrets(
    world: World, moved: dict[str, Any], verify: bool
) -> None:
    source = register(world, connection={"table": "orders", "password": "s3cret", "host": "h"})
    before = world.sources.get(source.id)
    with pytest.raises(InvalidInput) as refused:
        update(world, source, {"connection": moved}, actor=WRITER, verify=verify)
    assert [e.field for e in refused.value.errors] == ["connection.password"]
    assert "host" in refused.value.errors[0].message
    # Nothing stored, nothing recorded, and nothing was sent anywhere (not even a test).
    assert world.sources.get(source.id) == before
    assert actions(world) == [Action.SOURCE_REGISTERED]
    assert world.connector.seen == []


def test_a_kept_secret_follows_its_target_when_sent_again_or_for_a_holder_of_secrets(
    world: World,
) -> None:
    source = register(world, connection={"table": "orders", "password": "s3cret", "host": "h"})
    sent = update(
        world,
        source,
        {"connection": {"host": "h2", "password": "s3cret"}},
        actor=WRITER,
    )
    assert (sent.version, sent.connection["host"]) == (2, "h2")
    # A holder of `sources:secrets` could read the secret and send it: it may leave it out.
    kept = update(world, source, {"connection": {"host": "h3"}}, actor=ADMIN)
    assert (kept.version, kept.connection["host"]) == (3, "h3")
    assert in_clear(world, world.sources.get(source.id).connection)["password"] == "s3cret"
    # So may the local operator, which acts without that scope only not to be shown secrets.
    local = update(world, source, {"connection": {"host": "h4"}}, actor=OPERATOR_MASKED)
    assert (local.version, local.connection["host"]) == (4, "h4")
    # Other fields are no target: the secret stays with them for any writer.
    other = update(world, source, {"connection": {"table": "t2"}}, actor=WRITER)
    assert other.version == 5


@pytest.mark.parametrize(
    "connection",
    [
        {"table": "orders", "host": "h"},
        {"table": "orders", "password": "", "host": "h"},
    ],
)
def test_a_target_without_a_secret_moves_for_any_writer(
    world: World, connection: dict[str, Any]
) -> None:
    source = register(world, connection=connection)
    moved = update(world, source, {"connection": {"host": "h2"}}, actor=WRITER)
    assert moved.version == 2
    # Dropping the secret along with the move sends nothing either.
    again = update(world, source, {"connection": {"host": "h3", "password": None}}, actor=WRITER)
    assert again.version == 3


def test_the_target_fields_are_the_connectors_declaration() -> None:
    assert [f.name for f in PostgresConnector.fields if f.target] == [
        "host",
        "port",
        "dbname",
        "user",
    ]
    assert [f.name for f in CsvConnector.fields if f.target] == []


def test_a_weak_if_match_never_matches(world: World) -> None:
    source = register(world)
    for condition in ('W/"1"', 'W/"1", W/"2"'):
        with pytest.raises(VersionMismatch) as stale:
            update(world, source, {"description": "x"}, if_match=parse_if_match(condition))
        assert stale.value.current_version == 1
        with pytest.raises(VersionMismatch):
            update(world, source, {}, if_match=parse_if_match(condition))
        with pytest.raises(VersionMismatch):
            Synced(DeleteSource(world.sources, world.connectors, world.clock, world.ids))(
                DeleteSourceCommand(ADMIN, source.id, parse_if_match(condition))
            )
    assert world.sources.get(source.id).version == 1
    assert actions(world) == [Action.SOURCE_REGISTERED]


NFC_TEXT = st.text(
    st.sampled_from("aeiouAEIOU -_.0123456789éèêëÅåñçöøœÆǅﬁ\u0301\u0308\u0327\u1e9b\u212b"),
    min_size=1,
    max_size=12,
)


@given(name=NFC_TEXT, tags=st.lists(NFC_TEXT, max_size=4))
@settings(max_examples=60)
def test_a_name_or_tags_equal_after_nfc_change_nothing(name: str, tags: list[str]) -> None:
    nfc_tags = list(dict.fromkeys(normalized(t) for t in tags))
    assume(not name_errors(name) and not tags_errors(nfc_tags))
    world = new_world()
    source = register(world, name=normalized(name), tags=nfc_tags)
    nfd = {
        "name": unicodedata.normalize("NFD", name),
        "tags": [unicodedata.normalize("NFD", t) for t in nfc_tags],
    }
    # Writers racing from the same version: a no-op spelled otherwise never makes a 412.
    same = update(world, source, nfd, actor=WRITER, if_match=IfMatch(frozenset({1})))
    assert (same.version, same.name.value, same.tags) == (1, source.name.value, source.tags)
    racing = update(world, source, {"description": "x"}, WRITER, if_match=IfMatch(frozenset({1})))
    assert racing.version == 2
    assert update(world, source, nfd, actor=WRITER).version == 2
    assert actions(world) == [Action.SOURCE_REGISTERED, Action.SOURCE_UPDATED]


# --- the answer of a change: as a read by the same actor would show it -----------------------

WRITE_AND_SECRETS = Principal("tdbk_ws", {Scope.WRITE, Scope.SECRETS})


@pytest.mark.parametrize("patch", [{}, {"description": "x"}, {"connection": {"password": "n"}}])
def test_an_actor_that_may_not_read_is_answered_only_the_version(
    world: World, patch: dict[str, Any]
) -> None:
    source = register(world)
    for actor in (WRITE_AND_SECRETS, Principal("tdbk_w", {Scope.WRITE})):
        answer = answer_by_id(world, source.id, patch, actor)
        stored = world.sources.get(source.id)
        assert answer == SourceStamp(source.id, stored.version, stored.updated_at)
    assert Action.SOURCE_SECRETS_READ not in actions(world)


def test_a_secret_a_change_shows_in_clear_is_recorded_as_a_read_is(world: World) -> None:
    source = register(world)
    same = update(world, source, {})
    assert (same.version, same.connection["password"]) == (1, "s3cret")
    moved = update(world, source, {"description": "x"})
    assert (moved.version, moved.connection["password"]) == (2, "s3cret")
    assert actions(world) == [
        Action.SOURCE_REGISTERED,
        Action.SOURCE_SECRETS_READ,
        Action.SOURCE_UPDATED,
        Action.SOURCE_SECRETS_READ,
    ]
    read = world.events.list(EventFilter(action=Action.SOURCE_SECRETS_READ)).events
    assert {(e.actor, e.source_id, e.changed) for e in read} == {
        ("tdbk_admin", source.id, ("connection.password",))
    }
    # Masked for a key without the secrets scope, and then nothing is recorded.
    masked = update(world, source, {"description": "y"}, actor=WRITER)
    assert masked.connection["password"] == MASK
    assert actions(world)[-1] == Action.SOURCE_UPDATED


def test_only_writers_update(world: World) -> None:
    source = register(world)
    with pytest.raises(PermissionDenied):
        update(world, source, {"description": "x"}, actor=READER)


@given(raw=st.text(max_size=30))
@settings(max_examples=200)
def test_if_match_parses_or_refuses_never_crashes(raw: str) -> None:
    stripped = [part.strip() for part in raw.split(",")]
    valid = raw.strip() == "*" or all(
        (
            len(p) > 2
            and p[0] == p[-1] == '"'
            and p[1:-1].isascii()
            and p[1:-1].isdigit()
            and p[1] != "0"
            and len(p) <= 20
        )
        or (
            len(p) >= 4
            and p.startswith('W/"')
            and p.endswith('"')
            and all("!" <= c <= "~" and c != '"' for c in p[3:-1])
        )
        for p in stripped
    )
    if valid:
        condition = parse_if_match(raw)
        assert condition.versions is None or all(v >= 1 for v in condition.versions)
    else:
        with pytest.raises(InvalidInput):
            parse_if_match(raw)


def test_if_match_forms() -> None:
    assert parse_if_match("*") == IfMatch()
    assert parse_if_match(' "3" , "4"') == IfMatch(frozenset({3, 4}))
    # A weak tag never matches (RFC 9110 compares If-Match strongly): it admits no version.
    assert parse_if_match('W/"3"') == IfMatch(frozenset())
    assert parse_if_match('W/"3", "4"') == IfMatch(frozenset({4}))
    assert parse_if_match('W/"x"') == IfMatch(frozenset())
    for bad in ("3", "W/3", 'w/"3"', '"0"', '"-1"', '"a"', "", '"3",'):
        with pytest.raises(InvalidInput):
            parse_if_match(bad)


def test_verify_refuses_a_failing_connection_and_stores_nothing(world: World) -> None:
    with pytest.raises(VerificationFailed) as failed:
        register(world, connection={"table": "missing"}, verify=True)
    assert failed.value.reason == "table_not_found"
    assert world.sources.list(SourceFilter()).sources == ()
    source = register(world, verify=True)
    with pytest.raises(VerificationFailed):
        update(world, source, {"connection": {"table": "missing"}}, verify=True)
    assert world.sources.get(source.id).connection["table"] == "orders"
    assert update(world, source, {"description": "x"}, verify=True).version == 2
    # A patch that changes nothing is still tested when asked.
    world.connector.tables.clear()
    with pytest.raises(VerificationFailed):
        update(world, source, {}, verify=True)


def test_connection_tests_answer_whatever_the_backend_says(world: World) -> None:
    good = register(world)
    bad = register(world, name="bad", connection={"table": "missing", "password": "pw"})
    check = Synced(
        CheckSourceConnection(world.sources, world.connectors, world.cipher, world.clock)
    )
    ok = check(CheckSourceConnectionQuery(READER, good.id))
    assert (ok.ok, ok.reason) == (True, None)
    assert ok.elapsed_ms >= 0
    failing = check(CheckSourceConnectionQuery(READER, bad.id))
    assert (failing.ok, failing.reason) == (False, "table_not_found")
    # The connector was given the secret in clear.
    assert world.connector.seen[-1]["password"] == "pw"
    with pytest.raises(SourceNotFound):
        check(CheckSourceConnectionQuery(READER, uuid.uuid4()))


def test_a_new_connection_is_validated_like_a_registration_and_never_stored(world: World) -> None:
    check = Synced(CheckNewConnection(world.connectors, world.clock))
    result = check(CheckNewConnectionCommand(WRITER, "fake", {"table": "orders"}))
    assert result.ok
    with pytest.raises(InvalidInput):
        check(CheckNewConnectionCommand(WRITER, "fake", {"table": "orders"}, name=""))
    with pytest.raises(InvalidInput):
        check(CheckNewConnectionCommand(WRITER, "fake", {"nope": 1}))
    with pytest.raises(UnknownSourceType):
        check(CheckNewConnectionCommand(WRITER, "other", {}))
    with pytest.raises(PermissionDenied):
        check(CheckNewConnectionCommand(READER, "fake", {"table": "orders"}))
    assert actions(world) == []


def test_reading_a_secret_in_clear_is_recorded_masked_reads_are_not(world: World) -> None:
    source = register(world)
    get = Synced(
        GetSource(
            world.sources, world.connectors, world.cipher, world.events, world.clock, world.ids
        )
    )
    get(GetSourceQuery(READER, source.id))
    assert actions(world) == [Action.SOURCE_REGISTERED]
    get(GetSourceQuery(ADMIN, source.id))
    read = world.events.list(EventFilter(action=Action.SOURCE_SECRETS_READ)).events
    assert [(e.actor, e.changed) for e in read] == [("tdbk_admin", ("connection.password",))]
    no_secret = register(world, name="open", connection={"table": "t"})
    get(GetSourceQuery(ADMIN, no_secret.id))
    assert len(world.events.list(EventFilter(action=Action.SOURCE_SECRETS_READ)).events) == 1


def test_conditional_delete_and_its_event(world: World) -> None:
    source = register(world)
    delete = Synced(DeleteSource(world.sources, world.connectors, world.clock, world.ids))
    with pytest.raises(VersionMismatch):
        delete(DeleteSourceCommand(ADMIN, source.id, IfMatch(frozenset({2}))))
    delete(DeleteSourceCommand(ADMIN, source.id, IfMatch(frozenset({1}))))
    (event,) = world.events.list(EventFilter(action=Action.SOURCE_DELETED)).events
    assert (event.source_id, event.source_name) == (source.id, "orders")


def test_key_events_and_the_audit_scope(world: World) -> None:
    issued = Synced(CreateApiKey(world.keys, world.clock, world.ids))("ci", (), OPERATOR)
    assert Scope.AUDIT in issued.key.scopes
    assert issued.key.scopes == ALL_SCOPES
    Synced(RevokeApiKey(world.keys, world.clock, world.ids))(f"tdbk_{issued.key.key_id}", OPERATOR)
    list_events = Synced(ListEvents(world.events))
    events = list_events(ListEventsQuery(OPERATOR)).events
    assert [(e.action, e.key_id, e.actor) for e in events] == [
        (Action.KEY_CREATED, issued.key.key_id, "tdb-cli"),
        (Action.KEY_REVOKED, issued.key.key_id, "tdb-cli"),
    ]
    with pytest.raises(PermissionDenied):
        list_events(ListEventsQuery(Principal("tdbk_x", {Scope.READ})))
    with pytest.raises(InvalidInput):
        list_events(ListEventsQuery(OPERATOR, limit=0))


# --- what an update records, and what it checks first ---------------------------------------


def test_an_update_that_shows_a_secret_in_clear_records_the_read(world: World) -> None:
    source = register(world)
    moved = update(world, source, {"connection": {"password": "new"}})
    assert (moved.version, moved.connection["password"]) == (2, "new")
    assert actions(world)[-2:] == [Action.SOURCE_UPDATED, Action.SOURCE_SECRETS_READ]


def test_the_scope_of_an_update_is_checked_before_anything_is_read(world: World) -> None:
    source = register(world)
    with pytest.raises(PermissionDenied):
        update(world, source, {"description": "x"}, READER, verify=True)
    assert world.connector.seen == []
    assert world.sources.get(source.id).version == 1


# --- an unconditional update gives up on no race, only on the store -------------------------


class FakeTime:
    """A monotonic clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def retry(self, timeout: float) -> Retry:
        return Retry(timeout, self.monotonic, self.sleep)


class Rivals:
    """Another writer that changes the source just before each of our next `times` writes
    (None: before every one), so that each of them loses the compare-and-set."""

    def __init__(self, world: World, times: int | None) -> None:
        self.world, self.times, self.landed = world, times, 0

    async def land(self, source_id: uuid.UUID) -> None:
        if self.times is not None and self.landed >= self.times:
            return
        self.landed += 1
        current = await self.world.sources.get(source_id)
        rival = attrs.evolve(current, tags=(f"rival-{self.landed}",), version=current.version + 1)
        await self.world.sources.update(rival, current.version)


class BeatenSources:
    """The memory store's sources, each update preceded by a rival's."""

    def __init__(self, world: World, rivals: Rivals) -> None:
        self.inner, self.rivals = world.sources, rivals

    async def add(self, source: Source, event: Event | None = None) -> None:
        await self.inner.add(source, event)

    async def update(
        self, source: Source, expected_version: int, event: Event | None = None
    ) -> None:
        await self.rivals.land(source.id)
        await self.inner.update(source, expected_version, event)

    async def get(self, source_id: uuid.UUID) -> Source:
        return await self.inner.get(source_id)

    async def list(
        self, source_filter: SourceFilter, limit: int | None = None, after: PageKey | None = None
    ) -> SourcePage:
        return await self.inner.list(source_filter, limit, after)

    async def remove(
        self, source_id: uuid.UUID, expected_version: int | None = None, event: Event | None = None
    ) -> None:
        await self.inner.remove(source_id, expected_version, event)

    async def count(self) -> int:
        return await self.inner.count()

    def chunks(
        self, source_filter: SourceFilter, size: int | None = None
    ) -> AsyncGenerator[Sequence[SourceSummary], None]:
        return self.inner.chunks(source_filter, size)

    async def revision(self) -> int | None:
        return await self.inner.revision()


def beaten_update(
    world: World,
    source: Source,
    rivals: Rivals,
    time: FakeTime,
    timeout: float = 1.0,
    **kw: Any,
) -> Source | SourceStamp:
    """An update by WRITER of the source's description whose writes lose to `rivals`, giving
    up after `timeout` seconds of the fake time."""
    use_case = Synced(
        UpdateSource(
            BeatenSources(world, rivals),
            world.connectors,
            world.cipher,
            world.events,
            world.clock,
            world.ids,
            retry=time.retry(timeout),
        )
    )
    return use_case(update_command(WRITER, source.id, {"description": "ours"}, **kw))


@pytest.mark.parametrize("if_match", [None, IfMatch()], ids=["unconditional", "*"])
def test_an_unconditional_update_outlasts_any_number_of_lost_races(
    world: World, if_match: IfMatch | None
) -> None:
    source, time = register(world), FakeTime()
    # 40 pauses of at most 50 ms each fit well within the timeout, whatever the jitter.
    answer = beaten_update(world, source, Rivals(world, 40), time, 10.0, if_match=if_match)
    assert isinstance(answer, Source)
    assert (answer.version, answer.description, answer.tags) == (42, "ours", ("rival-40",))
    # A short pause, each different, between tries: racing writers spread out.
    assert len(time.pauses) == 40
    assert all(0 <= p <= RETRY_PAUSE_MAX for p in time.pauses)
    assert len(set(time.pauses)) > 1


def test_an_update_that_always_loses_is_a_store_outage_after_the_timeout(world: World) -> None:
    source, time = register(world), FakeTime()
    with pytest.raises(StoreUnavailable):
        beaten_update(world, source, Rivals(world, None), time)
    assert time.now == pytest.approx(1.0)
    assert world.sources.get(source.id).description != "ours"
    assert actions(world) == [Action.SOURCE_REGISTERED]


def test_an_update_pinned_to_a_version_loses_a_race_at_once(world: World) -> None:
    source, time = register(world), FakeTime()
    with pytest.raises(VersionMismatch) as lost:
        beaten_update(world, source, Rivals(world, None), time, if_match=IfMatch(frozenset({1})))
    assert (lost.value.current_version, time.pauses) == (2, [])
