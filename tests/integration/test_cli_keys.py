"""`tdb keys create --expires-in`, `tdb keys rotate --overlap`, and a key acting through the CLI:
the same use cases, rules and problems as `/v1/keys`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any


def test_create_with_a_lifetime_and_rotate_with_an_overlap(tdb: Any) -> None:
    code, out, _ = tdb("keys", "create", "--name", "ci", "--scope", "sources:read",
                       "--expires-in", "90d", "--json")  # fmt: skip
    assert code == 0
    made = json.loads(out)
    created = datetime.fromisoformat(made["created_at"])
    assert datetime.fromisoformat(made["expires_at"]) - created == timedelta(days=90)
    assert made["created_by"] == "tdb-cli"
    code, out, err = tdb("keys", "rotate", made["public_id"], "--overlap", "1h")
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    assert token.startswith("tdbk_")
    assert "until the overlap ends" in err
    rows = {r["key_id"]: r for r in json.loads(tdb("keys", "list", "--json")[1])}
    new = next(r for r in rows.values() if r["rotated_from"] == made["public_id"])
    assert (new["name"], new["scopes"]) == ("ci", ["sources:read"])
    old_ends = datetime.fromisoformat(rows[made["key_id"]]["expires_at"])
    assert old_ends - datetime.fromisoformat(new["created_at"]) <= timedelta(hours=1)
    code, out, _ = tdb("keys", "rotate", made["key_id"], "--json")
    assert code == 5
    assert json.loads(out)["type"] == "urn:tdb:problem:key-not-rotatable"
    events = json.loads(tdb("events", "list", "--action", "key.rotated", "--json")[1])
    assert [e["key_id"] for e in events] == [made["key_id"]]


def test_bad_durations_are_usage_errors(tdb: Any) -> None:
    for bad in ("90", "1.5d", "36h", "0d", "d"):
        code, _, err = tdb("keys", "create", "--name", "x", "--expires-in", bad)
        assert code == 2, (bad, err)
    code, _, _ = tdb("keys", "create", "--name", "y", "--expires-in", "2d")
    assert code == 0
    code, out, _ = tdb("keys", "rotate", "0123456789abcdef", "--overlap", "8d", "--json")
    assert code == 1  # the overlap is judged first
    assert json.loads(out)["errors"][0]["field"] == "overlap_seconds"


def test_the_name_rule_and_no_escalation_hold_for_a_key_acting_in_the_cli(tdb: Any) -> None:
    assert tdb("keys", "create", "--name", "etl")[0] == 0
    code, out, _ = tdb("keys", "create", "--name", "etl", "--json")
    assert code == 5
    assert json.loads(out)["type"] == "urn:tdb:problem:duplicate-key-name"
    manager = tdb("keys", "create", "--name", "mgr", "--scope", "keys:manage",
                  "--scope", "sources:read")[1].strip().splitlines()[-1]  # fmt: skip
    code, out, _ = tdb("keys", "create", "--name", "w", "--scope", "sources:write",
                       "--token", manager, "--json")  # fmt: skip
    assert code == 8
    assert json.loads(out)["required_scope"] == "sources:write"
    code, out, _ = tdb("keys", "create", "--name", "r", "--scope", "sources:read",
                       "--token", manager, "--json")  # fmt: skip
    assert code == 0
    assert json.loads(out)["created_by"].startswith("tdbk_")
