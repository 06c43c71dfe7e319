"""The CSV type rules, value by value and column by column, by example and by property."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import reduce

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from adapters.connectors.csv import detect_delimiter, through_last_whole_record, unique_names
from adapters.connectors.csv_inference import (
    BLANKS,
    INT32,
    INT64,
    MISSING,
    REPORTED,
    TYPE_RULES,
    WIDER,
    column_type,
    join,
    value_type,
)

TYPES = [name for name, _ in TYPE_RULES]
REPORTABLE = {
    "integer",
    "bigint",
    "numeric",
    "double precision",
    "boolean",
    "date",
    "time without time zone",
    "timestamp without time zone",
    "timestamp with time zone",
    "text",
}


def reported(type_name: str) -> str:
    return REPORTED.get(type_name, type_name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # integers, by range; a leading zero makes a code, not a number
        ("0", "zero or one"),
        ("1", "zero or one"),
        ("42", "integer"),
        ("-7", "integer"),
        ("+7", "integer"),
        ("-0", "integer"),
        (str(2**31 - 1), "integer"),
        (str(-(2**31)), "integer"),
        (str(2**31), "bigint"),
        (str(-(2**31) - 1), "bigint"),
        (str(2**63 - 1), "bigint"),
        (str(2**63), "numeric"),
        ("9" * 40, "numeric"),
        ("02134", "text"),
        ("00", "text"),
        ("-01", "text"),
        # decimals
        ("0.5", "numeric"),
        ("-0.5", "numeric"),
        (".5", "numeric"),
        ("123456789012345678901234567890.123456789", "numeric"),
        ("5.", "text"),
        ("01.5", "text"),
        ("1.2.3", "text"),
        # floats: scientific notation and infinities
        ("1e5", "double precision"),
        ("1.5E-3", "double precision"),
        ("-2.5e+10", "double precision"),
        ("0e0", "double precision"),
        ("inf", "double precision"),
        ("-Infinity", "double precision"),
        ("+INF", "double precision"),
        ("1e400", "text"),  # overflows a double: PostgreSQL refuses it
        ("1e-400", "text"),  # underflows to zero: refused too
        ("e5", "text"),
        # thousands separators, currencies, percentages stay text
        ("1,234", "text"),
        ("1 234", "text"),
        ("$5.00", "text"),
        ("5%", "text"),
        ("1_000", "text"),
        # booleans, any case
        ("true", "boolean"),
        ("FALSE", "boolean"),
        ("t", "boolean"),
        ("F", "boolean"),
        ("yes", "boolean"),
        ("No", "boolean"),
        ("y", "boolean"),
        ("off", "boolean"),
        ("truthy", "text"),
        # dates: year first with - or /, or with a month name; day-first numbers are ambiguous
        ("2024-01-31", "date"),
        ("2024-1-5", "date"),
        ("2024/01/31", "date"),
        ("0001-01-01", "date"),
        ("31 Jan 2024", "date"),
        ("31-Jan-2024", "date"),
        ("1 September 2024", "date"),
        ("Jan 31, 2024", "date"),
        ("January 31 2024", "date"),
        ("2024-02-29", "date"),
        ("2023-02-29", "text"),
        ("2024-13-01", "text"),
        ("2024-01/31", "text"),
        ("0000-01-01", "text"),
        ("31/01/2024", "text"),
        ("01/31/2024", "text"),
        ("31 Foo 2024", "text"),
        ("20240131", "integer"),
        # times of day
        ("10:00", "time without time zone"),
        ("9:30", "time without time zone"),
        ("23:59:59", "time without time zone"),
        ("10:00:00.123456", "time without time zone"),
        ("24:00", "text"),
        ("10:60", "text"),
        ("10:00:61", "text"),
        ("10:00+02:00", "text"),
        ("3:1", "text"),
        # timestamps: T or space, fractions, and a zone makes them zoned
        ("2024-01-31T10:00:00", "timestamp without time zone"),
        ("2024-01-31 10:00", "timestamp without time zone"),
        ("2024-01-31t10:00:00.5", "timestamp without time zone"),
        ("2024/01/31 10:00:00", "timestamp without time zone"),
        ("2024-01-31T10:00:00Z", "timestamp with time zone"),
        ("2024-01-31 10:00:00.123456+05:30", "timestamp with time zone"),
        ("2024-01-31T10:00:00-0800", "timestamp with time zone"),
        ("2024-01-31 10:00:00+02", "timestamp with time zone"),
        ("2024-01-31 10:00:00 UTC", "timestamp with time zone"),
        ("2024-01-31T10:00:00+16:00", "text"),
        ("2024-01-31T25:00:00", "text"),
        ("2024-02-30T10:00:00", "text"),
        ("2024-01-31T10:00:00 Europe/Paris", "text"),
        # everything else
        ("hello", "text"),
        ("0x1F", "text"),
        ("[1, 2]", "text"),
    ],
)
def test_each_value_gets_the_narrowest_type_that_takes_it(value: str, expected: str) -> None:
    assert value_type(value) == expected


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["1", "2", "3"], ("integer", False)),
        (["0", "1", "1", "0"], ("integer", False)),  # 0/1 alone is an integer column
        (["0"], ("integer", False)),
        (["0", "1", "true", "no"], ("boolean", False)),  # with words, 0/1 are booleans
        (["true", "2"], ("text", False)),
        (["1", str(2**40)], ("bigint", False)),
        (["1", str(2**70)], ("numeric", False)),
        (["1", "2.5"], ("numeric", False)),  # integers and decimals: decimal
        (["1", "2.5", "1e3"], ("double precision", False)),
        (["1", "inf"], ("double precision", False)),
        (["02134", "12345"], ("text", False)),  # one code with a leading zero: all codes
        (["0", "12", "0.5"], ("numeric", False)),
        (["2024-01-31", "2024-02-01T10:00:00"], ("timestamp without time zone", False)),
        (["2024-01-31T10:00:00", "2024-02-01T10:00:00Z"], ("timestamp with time zone", False)),
        (["2024-01-31", "10:00"], ("text", False)),
        (["2024-01-31", "12"], ("text", False)),
        (["10:00", "11:30:00.25"], ("time without time zone", False)),
        (["1", "", "3"], ("integer", True)),
        (["1", None], ("integer", True)),  # a cell missing from a short row
        (["1", "NA", "n/a", "NULL", "None", "-", "NaN", "#N/A", " "], ("integer", True)),
        (["", "NA", "null"], ("text", True)),  # nothing but missing: text, nullable
        ([], ("text", True)),  # no rows at all
        (["x", ""], ("text", True)),
        ([" 42 ", "7"], ("integer", False)),  # surrounding blanks are not part of the value
        (["42\u00a0"], ("text", False)),  # ... ASCII blanks only, as PostgreSQL reads them
    ],
)
def test_a_column_is_typed_by_the_join_of_its_values(
    cells: list[str | None], expected: tuple[str, bool]
) -> None:
    assert column_type(cells) == expected


def test_the_missing_markers_are_the_documented_ones() -> None:
    assert {"", "-", "na", "n/a", "#n/a", "null", "none", "nan"} == MISSING


def test_every_type_widens_to_text_and_only_reportable_types_are_reported() -> None:
    assert set(WIDER) == set(TYPES)
    assert all("text" in _upper_bounds(t) for t in TYPES)
    assert {reported(t) for t in TYPES} == REPORTABLE


def _upper_bounds(type_name: str) -> set[str]:
    return {t for t in TYPES if join(type_name, t) == t}


def test_join_is_a_least_upper_bound() -> None:
    for a, b in itertools.product(TYPES, repeat=2):
        both = join(a, b)
        assert both == join(b, a)
        assert join(a, both) == both
        assert join(b, both) == both
        assert all(join(both, c) == c for c in _upper_bounds(a) & _upper_bounds(b))
    for a, b, c in itertools.product(TYPES, repeat=3):
        assert join(join(a, b), c) == join(a, join(b, c))


def test_the_documented_lattice_decisions() -> None:
    assert join("integer", "numeric") == "numeric"
    assert join("bigint", "double precision") == "double precision"
    assert join("numeric", "double precision") == "double precision"
    assert join("date", "timestamp with time zone") == "timestamp with time zone"
    assert join("boolean", "integer") == "text"
    assert join("zero or one", "boolean") == "boolean"
    assert join("zero or one", "bigint") == "bigint"
    assert join("time without time zone", "date") == "text"


# Values of every shape the rules know, plus noise, to check rules and lattice agree.
any_value = st.one_of(
    st.sampled_from(["0", "1", "true", "No", "2.5", ".5", "1e3", "inf", "NaN", "02134", ""]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=False).map(repr),
    st.dates().map(date.isoformat),
    st.times().map(time.isoformat),
    st.datetimes().map(datetime.isoformat),
    st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
    st.text(alphabet="0123456789-+.:eE /TZ", max_size=12),
    st.text(max_size=8),
)


@given(any_value)
def test_a_type_takes_a_value_exactly_when_it_is_wider_than_the_values_type(value: str) -> None:
    value = value.strip(BLANKS)
    assume(value.lower() not in MISSING)
    own = value_type(value)
    for name, accepts in TYPE_RULES:
        assert accepts(value) == (join(own, name) == name), (value, own, name)


@given(st.lists(any_value, max_size=20))
def test_a_column_type_is_the_join_of_its_value_types(cells: list[str]) -> None:
    present = [c.strip(BLANKS) for c in cells if c.strip(BLANKS).lower() not in MISSING]
    expected = reported(reduce(join, map(value_type, present))) if present else "text"
    assert column_type(cells) == (expected, len(present) < len(cells) or not present)


@given(st.lists(st.integers(*INT32), min_size=1))
def test_int32_values_are_integer(values: list[int]) -> None:
    assert column_type(map(str, values)) == ("integer", False)


@given(
    st.lists(st.integers(*INT64)),
    st.integers(INT32[1] + 1, INT64[1]) | st.integers(INT64[0], INT32[0] - 1),
)
def test_int64_values_past_int32_are_bigint(values: list[int], big: int) -> None:
    assert column_type(map(str, [*values, big])) == ("bigint", False)


@given(st.lists(st.integers()), st.integers(2**63, 2**200) | st.integers(-(2**200), -(2**63) - 1))
def test_integers_past_64_bits_are_numeric(values: list[int], huge: int) -> None:
    assert column_type(map(str, [*values, huge])) == ("numeric", False)


decimals = st.decimals(allow_nan=False, allow_infinity=False, places=4)


@given(
    st.lists(decimals | st.integers().map(Decimal)),
    decimals.filter(lambda d: d != d.to_integral_value()),
)
def test_decimals_with_or_without_integers_are_numeric(values: list[Decimal], one: Decimal) -> None:
    assert column_type(format(v, "f") for v in [*values, one]) == ("numeric", False)


@given(
    st.lists(st.floats(allow_nan=False).map(repr)),
    st.floats(allow_nan=False).map(lambda f: f"{f:e}"),
)
def test_floats_in_scientific_notation_or_infinite_are_double(values: list[str], sci: str) -> None:
    assert column_type([*values, sci]) == ("double precision", False)


@given(st.lists(st.booleans(), min_size=1), st.sampled_from(sorted(MISSING)))
def test_booleans_in_any_spelling_are_boolean(values: list[bool], missing: str) -> None:
    words = [("true", "t", "Yes", "Y", "on")[i % 5] if v else "FALSE" for i, v in enumerate(values)]
    assert column_type(words) == ("boolean", False)
    assert column_type([*words, missing]) == ("boolean", True)


@given(st.lists(st.dates(), min_size=1))
def test_iso_dates_are_date(values: list[date]) -> None:
    assert column_type(d.isoformat() for d in values) == ("date", False)
    assert column_type(d.strftime("%Y/%m/%d") for d in values if d.year >= 1000) in (
        ("date", False),
        ("text", True),  # every date had a three-digit year
    )


@given(st.lists(st.times(), min_size=1))
def test_iso_times_are_time(values: list[time]) -> None:
    assert column_type(t.isoformat() for t in values) == ("time without time zone", False)


@given(st.lists(st.datetimes(), min_size=1), st.sampled_from(["T", " "]))
def test_naive_iso_timestamps_are_timestamp(values: list[datetime], sep: str) -> None:
    expected = ("timestamp without time zone", False)
    assert column_type(v.isoformat(sep) for v in values) == expected


offsets = st.integers(-(15 * 60 + 59), 15 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


@given(st.lists(st.datetimes(timezones=offsets), min_size=1), st.dates())
def test_zoned_iso_timestamps_are_zoned_even_beside_dates(
    values: list[datetime], day: date
) -> None:
    cells = [v.isoformat().replace("+00:00", "Z") for v in values] + [day.isoformat()]
    assert column_type(cells) == ("timestamp with time zone", False)


@given(st.lists(st.integers(0, 99999)), st.integers(1, 9999))
def test_codes_with_a_leading_zero_make_the_column_text(values: list[int], code: int) -> None:
    cells = [f"{v:05d}" for v in values] + [f"0{code}"]
    assert column_type(cells) == ("text", False)


@given(st.lists(st.integers(*INT32), min_size=1), st.lists(st.sampled_from(sorted(MISSING))))
def test_missing_markers_make_a_column_nullable_not_text(
    values: list[int], missing: list[str]
) -> None:
    expected = ("integer", bool(missing))
    assert column_type([*map(str, values), *missing]) == expected


@pytest.mark.parametrize(
    ("header", "width", "expected"),
    [
        (["id", "name"], 2, ["id", "name"]),
        ([" id ", "name "], 2, ["id", "name"]),
        (["id", "", "name", " "], 4, ["id", "column_2", "name", "column_4"]),
        (["a", "a", "a"], 3, ["a", "a_2", "a_3"]),
        (["a", "a", "a_2"], 3, ["a", "a_3", "a_2"]),  # a name the header uses is not taken
        (["", "column_1"], 2, ["column_1_2", "column_1"]),
        (["a", "b"], 4, ["a", "b", "column_3", "column_4"]),
        ([], 3, ["column_1", "column_2", "column_3"]),
        (["Id", "id"], 2, ["Id", "id"]),  # names are case-sensitive, as quoted SQL names
    ],
)
def test_column_names_are_unique_and_never_blank(
    header: list[str], width: int, expected: list[str]
) -> None:
    assert unique_names(header, width) == expected


@given(st.lists(st.text(alphabet="ab _", max_size=3), max_size=8), st.integers(0, 4))
def test_column_names_are_always_unique_and_non_blank(header: list[str], extra: int) -> None:
    names = unique_names(header, len(header) + extra)
    assert len(names) == len(set(names)) == len(header) + extra
    assert all(name.strip() for name in names)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b;c\n1,5;2,5;3\n", ";"),
        ("a\tb\n1\t2\n", "\t"),
        ("a|b\n1|2\n", "|"),
        ('a;b\n"x;y";2\n', ";"),
        ('a,b\n"1;2;3;4",5\n', ","),
        ("name;comment\nBob;hi, there\n", ";"),
        ("one column\nx\n", ","),
    ],
)
def test_the_delimiter_is_the_one_that_splits_records_consistently(
    text: str, expected: str
) -> None:
    assert detect_delimiter(text, complete=True) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b\n1,2\n3,", "a,b\n1,2\n"),
        ("a,b\n1,2\n", "a,b\n1,2\n"),
        ("a,b\r\n1,2\r", "a,b\r\n1,2\r"),
        ('a,b\n1,"x\ny', "a,b\n"),  # the cut fell inside a quoted field
        ('a,b\n1,"x\ny"\n2,"', 'a,b\n1,"x\ny"\n'),
        ('a,b\n1,"say ""hi""\n', "a,b\n"),
        ("a,b", ""),
    ],
)
def test_a_cut_sample_ends_at_its_last_whole_record(text: str, expected: str) -> None:
    assert through_last_whole_record(text) == expected


def _parse(text: str) -> list[list[str]]:
    return [r for r in csv.reader(io.StringIO(text, newline="")) if r]


@given(
    st.lists(st.lists(st.text(alphabet='ab ,"\n\r', max_size=6), min_size=1, max_size=4)),
    st.sampled_from(["\n", "\r\n"]),
    st.data(),
)
def test_whatever_the_cut_the_records_kept_are_whole(
    records: list[list[str]], newline: str, data: st.DataObject
) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows(records)
    text = out.getvalue()
    records = _parse(text)  # the writer's own round trip, blank records left out
    cut = data.draw(st.integers(0, len(text)))
    kept = _parse(through_last_whole_record(text[:cut]))
    assert kept == records[: len(kept)]
    if cut == len(text):
        assert kept == records
