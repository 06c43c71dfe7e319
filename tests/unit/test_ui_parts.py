"""The web UI's parts that hold no request: the side-by-side rows of a diff (laid out from the
domain's own changes), a form's fields as the API's body, the sealed session."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapters.crypto import AesGcmCipher, derived_key, generate_key
from domain.connections import ConnectionField
from domain.history import diff
from domain.sources import Column
from entrypoints.ui.forms import patch_body, register_body
from entrypoints.ui.history import diff_rows
from entrypoints.ui.session import SessionSeal

columns = st.lists(
    st.builds(
        Column,
        name=st.sampled_from(["id", "name", "total", "region", "at"]),
        type=st.sampled_from(["integer", "text"]),
        nullable=st.sampled_from([True, False, None]),
    ),
    max_size=5,
    unique_by=lambda c: c.name,
)


@given(columns, columns)
def test_the_rows_show_every_column_and_every_change_of_the_domains_diff(
    older: list[Column], newer: list[Column]
) -> None:
    rows = diff_rows(older, newer)
    assert [r.after for r in rows if r.after is not None] == newer
    assert sorted((r.before for r in rows if r.before is not None), key=lambda c: c.name) == sorted(
        older, key=lambda c: c.name
    )
    shown = [change for row in rows for change in row.changes]
    assert sorted(shown, key=repr) == sorted(diff(older, newer), key=repr)
    for row in rows:
        assert row.breaking == any(c.breaking for c in row.changes)


FIELDS = [
    ConnectionField("host", required=True),
    ConnectionField("port", int, default=5432),
    ConnectionField("password", secret=True),
    ConnectionField("header", bool, default=True),
]


def test_a_forms_text_becomes_the_apis_json_types() -> None:
    form = {
        "name": "orders",
        "source_type": "postgres",
        "tags": "a, b,\nc,",
        "connection.host": "db",
        "connection.port": "6543",
        "connection.password": "",
        "connection.header": "false",
    }
    body = register_body(FIELDS, form)
    assert body["tags"] == ["a", "b", "c"]
    assert body["connection"] == {"host": "db", "port": 6543, "header": False}
    assert patch_body(FIELDS, {**form, "connection.port": "x"})["connection"] == {
        "host": "db",
        "port": "x",  # not a number: the connector says so, as the API would
        "password": None,
        "header": False,
    }


def test_a_session_opens_only_as_sealed_and_until_it_ends() -> None:
    now = [1000.0]
    key = derived_key(generate_key(), "tdb ui session")
    seal = SessionSeal(AesGcmCipher(key), ttl=60, clock=lambda: now[0])
    session = seal.new("tdbk_1_secret")
    sealed = seal.seal(session)
    assert "secret" not in sealed
    assert seal.open(sealed) == session
    assert seal.open(sealed[:-2] + ("AA" if sealed[-2:] != "AA" else "BB")) is None
    other = SessionSeal(AesGcmCipher(derived_key(generate_key(), "tdb ui session")), ttl=60)
    assert other.open(sealed) is None
    now[0] += 61
    assert seal.open(sealed) is None
