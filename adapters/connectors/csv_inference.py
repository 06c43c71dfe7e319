"""The rules that type a CSV column, in PostgreSQL terms, from its text values alone."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from datetime import date
from functools import cache

# Cells that mean "no value" (compared after stripping, ignoring case): R writes NA, pandas
# and spreadsheets write empty cells, NaN or #N/A, databases NULL. They make a column nullable,
# never text. NaN counts as missing, not as a float: in real files it is a gap far more often.
MISSING = frozenset({"", "-", "na", "n/a", "#n/a", "null", "none", "nan"})

# The blanks PostgreSQL's input functions ignore around a value: ASCII ones only.
BLANKS = " \t\n\r\f\v"

BOOLEAN_WORDS = frozenset({"true", "false", "t", "f", "yes", "no", "y", "n", "on", "off"})

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

# Digits without a leading zero: "02134" is a code (postal, account, product), not a number.
_UNSIGNED = r"(?:0|[1-9][0-9]*)"
_INTEGER = re.compile(rf"[+-]?{_UNSIGNED}")
_DECIMAL = re.compile(rf"[+-]?(?:{_UNSIGNED}(?:\.[0-9]+)?|\.[0-9]+)")
_FLOAT = re.compile(
    rf"[+-]?(?:(?:{_UNSIGNED}(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?)",
    re.IGNORECASE,
)

_MONTH_NAMES = (
    ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
    ("may", "may"), ("jun", "june"), ("jul", "july"), ("aug", "august"),
    ("sep", "september"), ("oct", "october"), ("nov", "november"), ("dec", "december"),
)  # fmt: skip
_MONTHS = {name: number for number, names in enumerate(_MONTH_NAMES, 1) for name in names}
_YMD = r"(?P<y>[0-9]{4})(?P<sep>[-/])(?P<m>[0-9]{1,2})(?P=sep)(?P<d>[0-9]{1,2})"
_HMS = r"(?P<H>[0-9]{1,2}):(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?:\.[0-9]+)?)?"
_ZONE = r"\s?(?:[Zz]|UTC|(?P<zsign>[+-])(?P<zh>[0-9]{2})(?::?(?P<zm>[0-9]{2}))?)"
_NUMERIC_DATE = re.compile(_YMD)
_DAY_MONTH_YEAR = re.compile(r"(?P<d>[0-9]{1,2})[ -](?P<mon>[A-Za-z]{3,9})[ -](?P<y>[0-9]{4})")
_MONTH_DAY_YEAR = re.compile(r"(?P<mon>[A-Za-z]{3,9}) (?P<d>[0-9]{1,2}),? (?P<y>[0-9]{4})")
_TIME = re.compile(_HMS)
_TIMESTAMP = re.compile(rf"{_YMD}[Tt ]{_HMS}(?P<zone>{_ZONE})?")


def _integer_between(low: int, high: int) -> Callable[[str], bool]:
    def accepts(value: str) -> bool:
        # Bounded length first: int() of thousands of digits is slow, and refused past 4300.
        if len(value) > 20 or _INTEGER.fullmatch(value) is None:
            return False
        return low <= int(value) <= high

    return accepts


def is_float(value: str) -> bool:
    """A decimal, scientific-notation or infinite number that fits a double."""
    if _FLOAT.fullmatch(value) is None:
        return False
    if value[-1] in "fFyY":  # inf, infinity
        return True
    number = float(value)
    # PostgreSQL refuses overflow, and underflow of a non-zero number to zero.
    mantissa = value.lower().partition("e")[0]
    return math.isfinite(number) and (number != 0 or not any(c in mantissa for c in "123456789"))


def _valid_date(y: str, m: str | int, d: str) -> bool:
    try:
        date(int(y), int(m), int(d))
    except ValueError:
        return False
    return True


def _valid_time(match: re.Match[str]) -> bool:
    return int(match["H"]) < 24 and int(match["M"]) < 60 and int(match["S"] or 0) < 60


def is_date(value: str) -> bool:
    """Year-first numeric dates (2024-01-31, 2024/1/31) or dates with a month name (31 Jan 2024)."""
    if match := _NUMERIC_DATE.fullmatch(value):
        return _valid_date(match["y"], match["m"], match["d"])
    match = _DAY_MONTH_YEAR.fullmatch(value) or _MONTH_DAY_YEAR.fullmatch(value)
    month = _MONTHS.get(match["mon"].lower()) if match else None
    return match is not None and month is not None and _valid_date(match["y"], month, match["d"])


def is_time(value: str) -> bool:
    """A time of day, HH:MM[:SS[.fraction]], on a 24-hour clock."""
    match = _TIME.fullmatch(value)
    return match is not None and _valid_time(match)


def _timestamp(value: str, zoned: bool) -> bool:
    if is_date(value):
        return True
    match = _TIMESTAMP.fullmatch(value)
    if match is None or not _valid_date(match["y"], match["m"], match["d"]):
        return False
    if not _valid_time(match):
        return False
    if match["zone"] is None:
        return True
    return zoned and int(match["zh"] or 0) <= 15 and int(match["zm"] or 0) < 60


def timestamp_type(value: str) -> str | None:
    """The timestamp type a text value is written in (a date is not one), or None."""
    if is_date(value) or not _timestamp(value, zoned=True):
        return None
    if _timestamp(value, zoned=False):
        return "timestamp without time zone"
    return "timestamp with time zone"


# The value rules, narrowest first. Each predicate says whether PostgreSQL's input for that type
# would take the text; each accepts everything the types below it in the lattice accept, so a
# value's type is the first rule that takes it. "zero or one" is not reported: it stands for
# the values that are both an integer and a boolean, and is shown as `integer`.
TYPE_RULES: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("zero or one", lambda v: v in ("0", "1")),
    ("boolean", lambda v: v in ("0", "1") or v.lower() in BOOLEAN_WORDS),
    ("integer", _integer_between(*INT32)),
    ("bigint", _integer_between(*INT64)),
    ("numeric", lambda v: _DECIMAL.fullmatch(v) is not None),
    ("double precision", is_float),
    ("date", is_date),
    ("time without time zone", is_time),
    ("timestamp without time zone", lambda v: _timestamp(v, zoned=False)),
    ("timestamp with time zone", lambda v: _timestamp(v, zoned=True)),
    ("text", lambda v: True),
)

# The lattice: each type's immediate wider types. Two types join at their narrowest common
# wider type. Numbers widen integer < bigint < numeric < double precision: one value in
# scientific notation or an infinity means a float producer wrote the column, so it is read as
# floats even where other values are plain decimals. A column mixing dates and timestamps is
# timestamps (a date is its midnight); naive and zoned timestamps together are zoned, the type
# PostgreSQL loads both into. Anything else joins at text.
WIDER: dict[str, tuple[str, ...]] = {
    "zero or one": ("integer", "boolean"),
    "integer": ("bigint",),
    "bigint": ("numeric",),
    "numeric": ("double precision",),
    "double precision": ("text",),
    "boolean": ("text",),
    "date": ("timestamp without time zone",),
    "timestamp without time zone": ("timestamp with time zone",),
    "timestamp with time zone": ("text",),
    "time without time zone": ("text",),
    "text": (),
}

REPORTED = {"zero or one": "integer"}

_ACCEPTS = dict(TYPE_RULES)
_RANK = {name: rank for rank, (name, _) in enumerate(TYPE_RULES)}


@cache
def _at_least(type_name: str) -> frozenset[str]:
    """The type and every type wider than it."""
    return frozenset({type_name}).union(*(_at_least(wider) for wider in WIDER[type_name]))


def join(a: str, b: str) -> str:
    """The narrowest type that holds values of both types."""
    return min(_at_least(a) & _at_least(b), key=_RANK.__getitem__)


def is_missing(value: str) -> bool:
    """Whether a (stripped) cell stands for no value."""
    return value.lower() in MISSING


def value_type(value: str) -> str:
    """The narrowest type whose rule takes this (stripped, present) value."""
    return next(name for name, accepts in TYPE_RULES if accepts(value))


def column_type(cells: Iterable[str | None]) -> tuple[str, bool]:
    """The reported type and nullability of a column; `None` is a cell missing from a short row.

    A column with no present value at all (all missing, or no rows) is `text`, nullable.
    """
    found: str | None = None
    nullable = False
    for cell in set(cells):
        value = cell.strip(BLANKS) if cell is not None else ""
        if is_missing(value):
            nullable = True
        elif found is None:
            found = value_type(value)
        elif not _ACCEPTS[found](value):
            found = join(found, value_type(value))
        if found == "text" and nullable:
            break
    if found is None:
        return "text", True
    return REPORTED.get(found, found), nullable
