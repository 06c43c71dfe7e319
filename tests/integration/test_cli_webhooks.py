"""`tdb webhooks ...` on a real SQLite store: the same use cases and answers as the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def test_every_webhooks_command_with_json(tdb: Any, tmp_path: Path) -> None:
    code, out, err = tdb(
        "webhooks", "create", "--url", "http://127.0.0.1:9/hook", "--event", "webhook.ping",
        "--event", "source.schema_changed", "--breaking-only", "--json",
    )  # fmt: skip
    assert code == 0, err
    created = json.loads(out)
    assert created["secret"].startswith("whsec_")
    assert created["breaking_only"] is True
    ident = created["id"]
    code, out, _ = tdb("webhooks", "create", "--url", "http://127.0.0.1:9/h", "--event", "*")
    assert code == 0
    assert out.splitlines()[-1].startswith("whsec_")  # the secret is the last line
    code, out, _ = tdb("webhooks", "list", "--json")
    assert json.loads(out)[0]["id"] == ident
    assert "whsec_" not in out
    code, out, _ = tdb("webhooks", "show", ident, "--json")
    assert json.loads(out)["events"] == ["webhook.ping", "source.schema_changed"]
    patch = tmp_path / "patch.json"
    patch.write_text('{"description": "ops", "enabled": false}')
    code, out, _ = tdb("webhooks", "update", ident, str(patch), "--json")
    assert (json.loads(out)["description"], json.loads(out)["enabled"]) == ("ops", False)
    code, out, _ = tdb("webhooks", "rotate", ident, "--overlap", "1h", "--json")
    assert json.loads(out)["secret"].startswith("whsec_")
    code, out, _ = tdb("webhooks", "ping", ident, "--json")
    delivery_id = json.loads(out)["delivery_id"]
    code, out, _ = tdb("webhooks", "deliveries", ident, "--state", "pending", "--json")
    assert [d["id"] for d in json.loads(out)] == [delivery_id]
    code, out, _ = tdb("webhooks", "redeliver", ident, delivery_id, "--json")
    assert (code, json.loads(out)["state"]) == (0, "pending")
    code, out, _ = tdb("webhooks", "delete", ident, "--json")
    assert json.loads(out) == {"id": ident, "deleted": True}


def test_webhooks_commands_exit_as_documented(tdb: Any) -> None:
    code, out, _ = tdb("webhooks", "show", "00000000-0000-0000-0000-000000000000", "--json")
    assert code == 4
    assert json.loads(out)["type"].endswith("webhook-not-found")
    code, out, _ = tdb(
        "webhooks", "create", "--url", "http://example.com/x", "--event", "*", "--json"
    )
    assert code == 1
    assert json.loads(out)["errors"][0]["field"] == "url"
    code, _, err = tdb("webhooks", "rotate", "nope", "--overlap", "soon")
    assert code == 4, err
