"""JSON lines type agreement with DuckDB's `read_json_auto`, on generated files.

Writes JSON lines files whose keys cover every scalar family (integers of each size, floats,
booleans, strings, dates, times, naive and zoned timestamps), nested values (objects, arrays,
arrays of objects), missing keys and nulls, and mixes of these; reads each file with the jsonl
connector and with DuckDB (a bench/test dependency, not a runtime one), maps DuckDB's types to
the connector's vocabulary and counts the columns on which both agree. Target: >= 95 %.

DuckDB sizes JSON integers its own way (BIGINT, or HUGEINT for small numbers too), so the
connector's `integer` and `bigint` agree with any DuckDB integer type. Keys of one JSON kind
(the families, nested values, missing keys, nulls) and keys that mix kinds or formats are
counted apart; every disagreement is printed with why.

    .venv/bin/python bench/jsonl_duckdb_agreement.py
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from adapters.connectors.jsonl import JsonLinesConnector

TARGET = 0.95
LINES = 300
MISSING = object()

# Each key: how its value on line `i` is made (MISSING: the key is left out of that line).
Case = Callable[[int, random.Random], Any]
CASES: dict[str, Case] = {
    "int_small": lambda i, r: r.randrange(-1000, 1000),
    "int_zero_one": lambda i, r: r.randrange(2),
    "int_big": lambda i, r: r.randrange(2**31, 2**40),
    "int_huge": lambda i, r: r.randrange(2**64, 2**70),
    "int_negative": lambda i, r: -r.randrange(10**6),
    "float": lambda i, r: r.random() * 100,
    "float_exponent": lambda i, r: float(f"{r.random():e}"),
    "float_large": lambda i, r: 1e300 * r.random(),
    "int_then_float": lambda i, r: i if i < LINES // 2 else i + 0.5,
    "bool": lambda i, r: r.random() < 0.5,
    "string": lambda i, r: f"name {r.randrange(10**6)}",
    "string_empty": lambda i, r: "" if i % 3 else "x",
    "string_digits": lambda i, r: str(r.randrange(10**6)),
    "uuid": lambda i, r: f"{r.getrandbits(128):032x}",
    "date": lambda i, r: f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
    "time": lambda i, r: f"{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}",
    "timestamp": lambda i, r: f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:15:00",
    "timestamp_space": lambda i, r: f"2026-01-{1 + i % 28:02d} {i % 24:02d}:15:00.123",
    "timestamp_z": lambda i, r: f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:15:00Z",
    "timestamp_offset": lambda i, r: f"2026-01-{1 + i % 28:02d}T10:15:00+02:00",
    "invalid_date": lambda i, r: "2026-02-30",
    "object": lambda i, r: {"zip": f"{i:05d}", "city": "Springfield"},
    "object_nested": lambda i, r: {"a": {"b": {"c": [i, {"d": None}]}}},
    "array_ints": lambda i, r: [r.randrange(10) for _ in range(r.randrange(1, 4))],
    "array_objects": lambda i, r: [{"sku": f"A-{i}", "qty": i}],
    "array_mixed": lambda i, r: [1, "a", None, True],
    "array_empty": lambda i, r: [],
    "object_empty": lambda i, r: {},
    "int_with_nulls": lambda i, r: None if i % 5 == 0 else i,
    "string_missing_half": lambda i, r: MISSING if i % 2 else "here",
    "key_late": lambda i, r: MISSING if i < LINES - 10 else i,
    "all_null": lambda i, r: None,
}
# Keys whose values are of several JSON kinds or formats: edge cases, counted apart.
MIXED: dict[str, Case] = {
    "bool_and_int": lambda i, r: True if i % 2 else 7,
    "int_and_string": lambda i, r: i if i % 2 else f"v{i}",
    "object_and_string": lambda i, r: {"a": i} if i % 2 else "text",
    "array_and_object": lambda i, r: [i] if i % 2 else {"a": i},
    "float_and_string": lambda i, r: 1.5 if i % 2 else "1.5",
    "date_and_string": lambda i, r: "2026-01-02" if i % 2 else "soon",
    "date_then_timestamp": lambda i, r: "2026-01-02" if i % 2 else "2026-01-02T10:00:00",
}
# Why the two readers differ where they do (the connector follows tdb's type vocabulary).
WHY = {
    "int_huge": "beyond 64 bits: DuckDB reads DOUBLE and loses digits; tdb says numeric, exact",
    "timestamp_z": "DuckDB converts a zoned timestamp to UTC and drops the zone; tdb keeps it",
    "timestamp_offset": "DuckDB converts a zoned timestamp to UTC and drops the zone; tdb keeps it",
    "all_null": "no value at all: DuckDB says JSON, tdb text, as the CSV connector does",
    "date_then_timestamp": "DuckDB wants one format per column; tdb reads a date as midnight",
}


def duckdb_family(kind: str) -> str:
    """DuckDB's type, in the connector's vocabulary (its integer types as one family)."""
    kind = kind.upper()
    integers = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")
    if kind in integers or kind in ("UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"):
        return "integer"
    if kind.startswith("DECIMAL"):
        return "numeric"
    if kind in ("DOUBLE", "FLOAT"):
        return "double precision"
    if kind == "BOOLEAN":
        return "boolean"
    if kind == "VARCHAR":
        return "text"
    if kind == "DATE":
        return "date"
    if kind == "TIME":
        return "time without time zone"
    if kind in ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"):
        return "timestamp without time zone"
    if kind == "TIMESTAMP WITH TIME ZONE":
        return "timestamp with time zone"
    if kind == "JSON" or kind.startswith(("STRUCT", "MAP")) or kind.endswith("[]"):
        return "jsonb"
    if kind == "NULL":
        return "null"
    return kind.lower()


def ours_family(kind: str) -> str:
    return "integer" if kind in ("integer", "bigint") else kind


def write(path: Path, seed: int, cases: dict[str, Case]) -> None:
    rng = random.Random(seed)
    with path.open("w") as file:
        for i in range(LINES):
            line = {}
            for key, make in cases.items():
                value = make(i, rng)
                if value is not MISSING:
                    line[key] = value
            file.write(json.dumps(line) + "\n")


def agreement(root: Path, cases: dict[str, Case]) -> tuple[int, int, list[tuple[str, ...]]]:
    """Columns compared, columns agreed on, and each disagreement (of the first file)."""
    agree = total = 0
    disagreements: list[tuple[str, ...]] = []
    connector = JsonLinesConnector(root, timeout=60)
    for seed in range(3):
        path = root / f"cases-{seed}.jsonl"
        write(path, seed, cases)
        ours = {c.name: c.type for c in asyncio.run(connector.inspect({"path": path.name}))}
        described = duckdb.sql(f"DESCRIBE SELECT * FROM read_json_auto('{path}')").fetchall()
        theirs = {row[0]: row[1] for row in described}
        for key in cases:
            total += 1
            if ours_family(ours[key]) == duckdb_family(theirs[key]):
                agree += 1
            elif seed == 0:
                disagreements.append((key, ours[key], theirs[key]))
    return agree, total, disagreements


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="tdb-jsonl-agreement-"))
    try:
        print(f"duckdb {duckdb.__version__}; 3 files of each set, {LINES} lines each")
        met = True
        for title, cases in (("one JSON kind per key", CASES), ("mixed kinds", MIXED)):
            agree, total, disagreements = agreement(root, cases)
            print(f"{title}: {len(cases)} keys, agreement {agree}/{total} = {agree / total:.1%}")
            for key, ours_type, theirs_type in disagreements:
                print(
                    f"  {key:<20} tdb {ours_type:<28} duckdb {theirs_type:<10} {WHY.get(key, '')}"
                )
            met = met and agree / total >= TARGET
        print("target met" if met else f"TARGET MISSED (>= {TARGET:.0%} on each set)")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
