"""What an operator sees of a real `tdb serve`: request ids, its log lines, its metrics."""

from __future__ import annotations

import json
import re
import secrets
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import TdbServer
from tests.helpers import free_port

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _log_lines(server: TdbServer) -> list[dict[str, Any]]:
    """Every line the server wrote on stderr, each parsed as JSON (all of them must be)."""
    return [json.loads(line) for line in server.stderr_path.read_text().splitlines()]


def _samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples called `name` in a scrape, by their labels."""
    return {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def _raw_get(server: TdbServer, request_id: bytes) -> bytes:
    """A GET /healthz sent byte for byte (clients refuse to send control characters)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Request-ID: "
            + request_id
            + b"\r\n\r\n"
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def test_request_ids_are_kept_when_valid_and_replaced_otherwise(serve: Any, tmp_path: Path) -> None:
    server: TdbServer = serve({"TDB_DATABASE_URL": f"sqlite:///{tmp_path / 'ids.sqlite3'}"})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for kept in ("abc-123", "x" * 128, "~!#$%&'*+.^_`|"):
            assert (
                http.get("/healthz", headers={"X-Request-ID": kept}).headers["x-request-id"] == kept
            )
        for bad in (b"", b"x" * 129, b"a b", b"a\tb", b"caf\xe9"):
            response = http.get("/v1/sources", headers={b"X-Request-ID": bad})
            made = response.headers["x-request-id"]
            assert made.encode() != bad
            assert re.fullmatch(r"[0-9a-f]{32}", made)
            assert response.json()["request_id"] == made
    for bad_bytes in (b"a\x01b", b"a\x7fb"):
        answer = _raw_get(server, bad_bytes)
        assert bad_bytes not in answer
        assert answer.startswith((b"HTTP/1.1 200", b"HTTP/1.1 400")), answer[:40]


def test_no_log_line_and_no_metric_holds_a_token_or_a_password(serve: Any, tmp_path: Path) -> None:
    database = tmp_path / "leak.sqlite3"
    server: TdbServer = serve(
        {"TDB_DATABASE_URL": f"sqlite:///{database}", "TDB_LOG_FORMAT": "json"}
    )
    token = server.admin_token()
    assert token
    secret = f"Distinctive{secrets.token_hex(8)}"
    public_id = "_".join(token.split("_")[:2])
    bad_token = f"{public_id}_{secret}"
    connection = {
        "host": "127.0.0.1",
        "port": free_port(),  # nothing listens: the inspection fails at once
        "dbname": "d",
        "user": "u",
        "password": secret,
        "table": "t",
    }
    body = {"name": "leaky", "source_type": "postgres", "connection": connection}
    statuses = {}
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=15
    ) as http:
        # Query values are never logged either.
        bad = http.get(
            f"/v1/sources?name_prefix={secret}", headers={"Authorization": f"Bearer {bad_token}"}
        )
        statuses[401] = bad
        created = http.post("/v1/sources", json=body)
        assert created.status_code == 201
        statuses[409] = http.post("/v1/sources", json=body)
        statuses[400] = http.post(
            "/v1/sources", json={**body, "connection": {**connection, "port": "x"}}
        )
        statuses[413] = http.post(
            "/v1/sources", json={**body, "description": secret * (70_000 // len(secret))}
        )
        schema_id = f"probe-{secrets.token_hex(4)}"
        statuses[503] = http.get(
            f"/v1/sources/{created.json()['id']}/schema", headers={"X-Request-ID": schema_id}
        )
        tested = http.post(f"/v1/sources/{created.json()['id']}/test")
        assert tested.json()["reason"] == "unreachable"
        # A would-be source at a host the outbound policy refuses: refused before any
        # connection, and counted as a failed connection test like the other.
        elsewhere = {**connection, "host": "169.254.169.254"}
        refused = http.post("/v1/sources/test", json={**body, "connection": elsewhere})
        assert refused.json()["reason"] == "host_not_allowed"
        # A row no code path can read: the server fails unexpectedly, with a 500.
        broken = http.post(
            "/v1/sources", json={**body, "name": "broken", "connection": {**connection}}
        ).json()["id"]
        with sqlite3.connect(database) as db:
            db.execute(
                "UPDATE sources SET connection = ? WHERE id = ?",
                [f'{{"password": "{secret}", ', broken],
            )
        statuses[500] = http.get(f"/v1/sources/{broken}")
        scrape = http.get("/metrics")
    for status, response in statuses.items():
        assert response.status_code == status, response.text
        assert response.json()["request_id"] == response.headers["x-request-id"]
        assert secret not in response.text
    assert scrape.status_code == 200
    assert secret not in scrape.text
    assert not UUID.search(scrape.text), "an id in a metric label"

    stderr = server.stderr_path.read_text()
    assert secret not in stderr
    assert token.removeprefix(public_id) not in stderr
    lines = _log_lines(server)
    requests = [line for line in lines if line["event"] == "request"]
    for status, response in statuses.items():
        (line,) = [r for r in requests if r["request_id"] == response.headers["x-request-id"]]
        assert line["status"] == status
        assert line["method"] in ("GET", "POST")
        assert line["client"] == "127.0.0.1"
        assert line["duration_ms"] >= 0
        assert "?" not in line["route"]
        assert not UUID.search(line["route"])
    by_id = {r["request_id"]: r for r in requests}
    assert by_id[statuses[401].headers["x-request-id"]]["actor"] is None
    assert by_id[schema_id]["actor"] == public_id
    assert by_id[schema_id]["route"] == "/v1/sources/{source_id}/schema"
    # The inspection ran on a worker thread: its failure is logged with the request's id.
    (failure,) = [line for line in lines if line["event"] == "inspection_failed"]
    assert failure["request_id"] == schema_id
    assert failure["reason"] == statuses[503].json()["reason"] == "unreachable"
    # The 500 is logged with its traceback, under the id the client was given.
    (crash,) = [line for line in lines if line["event"] == "unexpected_error"]
    assert crash["request_id"] == statuses[500].json()["request_id"]
    assert "Traceback" in crash["exception"]

    failures = _samples(scrape.text, "tdb_auth_failures_total")
    assert failures[frozenset({("cause", "unknown")})] == 1
    inspections = _samples(scrape.text, "tdb_schema_inspections_total")
    assert inspections[frozenset({("source_type", "postgres"), ("reason", "unreachable")})] == 1
    tests = _samples(scrape.text, "tdb_connection_tests_total")
    assert tests[frozenset({("source_type", "postgres"), ("reason", "unreachable")})] == 1
    assert tests[frozenset({("source_type", "postgres"), ("reason", "host_not_allowed")})] == 1
    assert _samples(scrape.text, "tdb_sources_registered")[frozenset()] == 2


def test_one_scrape_counts_the_requests_of_every_worker(serve: Any, tmp_path: Path) -> None:
    env = {"TDB_DATABASE_URL": f"sqlite:///{tmp_path / 'two.sqlite3'}", "TMPDIR": str(tmp_path)}
    server: TdbServer = serve(env, workers=2)
    requests = 60
    for _ in range(requests):
        # A fresh connection each time: the kernel spreads them over both workers.
        with httpx.Client(timeout=10) as fresh:
            assert fresh.get(f"{server.url}/healthz").status_code == 200
    for _ in range(6):
        with httpx.Client(timeout=10) as fresh:
            scrape = fresh.get(f"{server.url}/metrics")
        counted = _samples(scrape.text, "tdb_http_requests_total")
        label = frozenset({("route", "/healthz"), ("method", "GET"), ("status", "200")})
        # The readiness polls of the test's fixture are /healthz requests too.
        polls = server.stderr_path.read_text().count("route=/healthz")
        assert counted[label] == polls >= requests
    assert list(tmp_path.glob("tdb-metrics-*"))
    server.stop()
    assert not list(tmp_path.glob("tdb-metrics-*")), "the metrics directory outlived the server"


def test_metrics_can_be_turned_off(serve: Any, tmp_path: Path) -> None:
    server: TdbServer = serve(
        {"TDB_DATABASE_URL": f"sqlite:///{tmp_path / 'off.sqlite3'}", "TDB_METRICS": "off"}
    )
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 404
    assert response.json()["request_id"] == response.headers["x-request-id"]
    deadline = time.monotonic() + 10
    while "route=unmatched" not in server.stderr_path.read_text():
        assert time.monotonic() < deadline, "no log line for the unmatched request"
        time.sleep(0.05)  # the line is written once the answer is sent; bounded above
