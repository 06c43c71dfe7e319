"""Domain invariants: a value that exists is valid."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.connections import ConnectionField, check_connection
from domain.errors import InvalidConnection, InvalidInput
from domain.sources import Source, SourceFilter, SourceName

BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Characters that take room but show nothing, though Unicode files them as letters or symbols.
BLANK_LETTERS = "\u115f\u1160\u3164\uffa0\u2800"


def _acceptable(name: str) -> bool:
    nfc = unicodedata.normalize("NFC", name)
    return (
        1 <= len(nfc) <= 100
        and bool(nfc.strip())
        and not any(unicodedata.category(c) in ("Cc", "Cs") for c in name)
        and not any(c in BIDI_CONTROLS for c in nfc)
        and any(unicodedata.category(c)[0] in "LNPS" and c not in BLANK_LETTERS for c in nfc)
    )


@given(st.text(max_size=120))
def test_a_source_name_exists_exactly_when_it_keeps_the_rules(name: str) -> None:
    if _acceptable(name):
        assert SourceName(name).value == unicodedata.normalize("NFC", name)
    else:
        with pytest.raises(InvalidInput) as caught:
            SourceName(name)
        assert caught.value.errors[0].field == "name"


@pytest.mark.parametrize("name", ["", " ", "\t\n", "a\x00b", "tab\there", "x" * 101, "\ud800"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        SourceName(name)


@pytest.mark.parametrize(
    "name", ["orders", "x" * 100, "Bestellungen 2026", "注文", "👩‍👩‍👧 family"]
)
def test_good_names_are_accepted(name: str) -> None:
    assert str(SourceName(name)) == name


def _source(**changes: object) -> Source:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "name": SourceName("orders"),
        "source_type": "postgres",
        "connection": {"host": "db"},
        "description": "",
        "tags": ("a",),
        "registered_by": "tdbk_x",
        "registered_at": datetime(2026, 5, 22, tzinfo=UTC),
    }
    fields.update(changes)
    return Source(**fields)  # type: ignore[arg-type]


def test_source_refuses_long_description_and_bad_tags() -> None:
    with pytest.raises(InvalidInput):
        _source(description="x" * 501)
    with pytest.raises(InvalidInput):
        _source(tags=["t"] * 51)
    with pytest.raises(InvalidInput):
        _source(tags=[""])
    tags = [f"t{i}" for i in range(50)]
    assert _source(description="x" * 500, tags=tags).description == "x" * 500


def test_source_connection_cannot_be_changed_after_construction() -> None:
    source = _source()
    with pytest.raises(TypeError):
        source.connection["host"] = "elsewhere"  # type: ignore[index]


def test_filter_needs_every_tag_the_type_and_the_exact_prefix() -> None:
    source = _source(name=SourceName("Orders_2026"), tags=("a", "b"))
    assert SourceFilter(tags=("a", "b")).matches(source)
    assert not SourceFilter(tags=("a", "c")).matches(source)
    assert SourceFilter(source_type="postgres", name_prefix="Orders_").matches(source)
    assert not SourceFilter(name_prefix="orders").matches(source)
    assert not SourceFilter(source_type="csv").matches(source)


FIELDS = (
    ConnectionField("host", required=True),
    ConnectionField("port", type=int, default=5432, min_value=1, max_value=65535),
    ConnectionField("password", secret=True, allow_empty=True),
    ConnectionField("mode", choices=("a", "b")),
)


def test_check_connection_fills_defaults() -> None:
    assert check_connection(FIELDS, {"host": "h"}) == {"host": "h", "port": 5432}


def test_check_connection_names_every_bad_field() -> None:
    with pytest.raises(InvalidConnection) as caught:
        check_connection(FIELDS, {"port": True, "extra": 1, "mode": "c"})
    fields = {e.field for e in caught.value.errors}
    assert fields == {"connection.extra", "connection.host", "connection.port", "connection.mode"}


def test_a_json_number_with_no_fraction_is_an_integer() -> None:
    checked = check_connection(FIELDS, {"host": "h", "port": 6543.0})
    assert checked["port"] == 6543
    assert type(checked["port"]) is int


@pytest.mark.parametrize("port", [0, 65536, -1, "5432", 1.5, 0.0, 65536.0])
def test_check_connection_refuses_bad_ports(port: object) -> None:
    with pytest.raises(InvalidConnection):
        check_connection(FIELDS, {"host": "h", "port": port})


def test_check_connection_refuses_non_objects_and_empty_required_strings() -> None:
    with pytest.raises(InvalidConnection):
        check_connection(FIELDS, ["host"])  # type: ignore[arg-type]
    with pytest.raises(InvalidConnection):
        check_connection(FIELDS, {"host": ""})
    assert check_connection(FIELDS, {"host": "h", "password": ""})["password"] == ""


# Invisible: separators, format characters (zero-width space, joiners, BOM, tag characters),
# combining marks with nothing to combine with, and the blank letters.
invisible = st.characters(categories=["Zs", "Cf", "Mn", "Me"]) | st.sampled_from(BLANK_LETTERS)


@given(st.text(invisible, min_size=1, max_size=100))
def test_a_name_of_invisible_characters_only_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        SourceName(name)
    assert caught.value.errors[0].field == "name"


@given(st.text(min_size=1, max_size=40), st.sampled_from(BIDI_CONTROLS), st.text(max_size=40))
def test_a_name_holding_a_bidi_control_is_refused(before: str, bidi: str, after: str) -> None:
    with pytest.raises(InvalidInput):
        SourceName(f"{before}x{bidi}{after}")


@given(st.text(st.characters(categories=["L", "M", "N"]), min_size=1, max_size=30))
def test_names_and_tags_are_kept_in_nfc(text: str) -> None:
    decomposed = unicodedata.normalize("NFD", text)
    assert SourceName(f"n{decomposed}").value == unicodedata.normalize("NFC", f"n{text}")
    source = _source(tags=(f"t{decomposed}",))
    assert source.tags == (unicodedata.normalize("NFC", f"t{text}"),)


@pytest.mark.parametrize(
    "tags",
    [("a", "a"), ("caf\u00e9", "cafe\u0301"), ("x", "tab\there"), ("x\x1b[31m",),
     ("\u202eevil",), ("ok", "\x85")],
)  # fmt: skip
def test_tags_with_controls_or_repeats_are_refused(tags: tuple[str, ...]) -> None:
    with pytest.raises(InvalidInput) as caught:
        _source(tags=tags)
    assert caught.value.errors[0].field.startswith("tags[")


def test_filters_compare_in_nfc() -> None:
    source = _source(name=SourceName("caf\u00e9s"), tags=("caf\u00e9",))
    assert SourceFilter(tags=("cafe\u0301",)).matches(source)
    assert SourceFilter(name_prefix="cafe\u0301").matches(source)
