"""Schema history under a real two-worker `tdb serve`: racing inspections store a change once."""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
from psycopg import sql

from tests.builders import auth_headers
from tests.e2e.conftest import TdbServer

INSPECTIONS = 20


def racing_inspections(server: TdbServer, headers: dict[str, str], url: str) -> list[Any]:
    """The answers of INSPECTIONS requests for `url` sent at once, a connection each."""
    start = threading.Barrier(INSPECTIONS)

    def inspect(_: int) -> httpx.Response:
        # A connection each, so that the kernel spreads them over both workers.
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            start.wait()
            return client.get(url)

    with ThreadPoolExecutor(INSPECTIONS) as pool:
        return list(pool.map(inspect, range(INSPECTIONS)))


def test_racing_inspections_of_a_changed_table_store_one_snapshot(
    serve: Any,
    store_env: dict[str, str],
    postgres_url: str,
) -> None:
    # Room for every inspection of the race in each worker's pool of source connections.
    server: TdbServer = serve({**store_env, "TDB_SOURCE_POOL_SIZE": "10"}, workers=2)
    headers = auth_headers(server)
    table = f"drifting_{secrets.token_hex(4)}"
    target = urlsplit(postgres_url)
    connection = {
        "host": target.hostname or "127.0.0.1",
        "port": target.port or 5432,
        "dbname": target.path.lstrip("/"),
        "user": target.username or "postgres",
        "table": table,
    }
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id integer NOT NULL)").format(sql.Identifier(table)))
        try:
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
                created = http.post(
                    "/v1/sources",
                    json={"name": table, "source_type": "postgres", "connection": connection},
                )
                assert created.status_code == 201, created.text
                schema_url = f"/v1/sources/{created.json()['id']}/schema"
                first = http.get(schema_url)
                assert first.status_code == 200, first.text

                for change in ("ADD COLUMN note text", "ALTER COLUMN id TYPE bigint"):
                    conn.execute(sql.SQL("ALTER TABLE {} " + change).format(sql.Identifier(table)))
                    answers = racing_inspections(server, headers, schema_url)
                    # Should the kernel still give one worker more than its pool admits, the
                    # extra ones are 503 `busy`: they inspected nothing and record nothing.
                    answered = [a for a in answers if a.status_code == 200]
                    assert len(answered) >= INSPECTIONS // 2
                    busy = [a for a in answers if a.status_code != 200]
                    assert all(a.status_code == 503 and a.json()["reason"] == "busy" for a in busy)
                    assert len({a.json()["fingerprint"] for a in answered}) == 1

                history = http.get(f"{schema_url}/history").json()
                events = http.get(
                    "/v1/events",
                    params={
                        "action": "source.schema_changed",
                        "source_id": created.json()["id"],
                    },
                ).json()
        finally:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))

    assert [s["fingerprint"] for s in history] == [
        answered[0].json()["fingerprint"],
        history[1]["fingerprint"],
        first.json()["fingerprint"],
    ]
    assert [[(c["column"], c["change"]) for c in s["changes"]] for s in history] == [
        [("id", "type_changed")],
        [("note", "added")],
        [],
    ]
    assert [s["breaking"] for s in history] == [True, False, False]
    # One event per stored snapshot, written with it: none for the inspections that lost.
    assert [e["breaking"] for e in events] == [False, False, True]
