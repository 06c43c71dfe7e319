"""The Webhooks API through Litestar's test client, on a real SQLite store, with the app's own
sender delivering to real HTTP receivers on 127.0.0.1; signatures are checked with the
reference `standardwebhooks` package."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from dependency_injector import providers
from litestar.testing import TestClient
from standardwebhooks import Webhook

from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from entrypoints.operator import OPERATOR
from entrypoints.settings import Settings
from tests.helpers import loopback_resolver, on_app
from tests.receivers import Answer, Received, Receiver


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "data").mkdir()
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'tdb.sqlite3'}",
        csv_root=tmp_path / "data",
        auth_cache_ttl=0,
        # 127.0.0.2 stands for an address the operator refuses.
        denied_networks="169.254.0.0/16,fe80::/10,127.0.0.2/32",
        webhook_poll=0.02,
        webhook_timeout=2,
        webhook_retry_schedule="0.05,0.05",
    )


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    container = build_container(settings)
    container.resolver.override(providers.Object(loopback_resolver))
    yield container
    container.shutdown_resources()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(container)) as client:
        yield client


@pytest.fixture
def admin(container: Container, client: TestClient[Any]) -> dict[str, str]:
    token = on_app(client, container.create_api_key(), "admin", (), OPERATOR).token
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as running:
        yield running


def _create(client: TestClient[Any], admin: dict[str, str], **body: Any) -> dict[str, Any]:
    answer = client.post("/v1/webhooks", json=body, headers=admin)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def _register(client: TestClient[Any], admin: dict[str, str], data: Path, name: str) -> str:
    (data / f"{name}.csv").write_text("id,total\n1,2.5\n")
    answer = client.post(
        "/v1/sources",
        json={
            "name": name,
            "source_type": "csv",
            "connection": {"path": f"{name}.csv"},
            "tags": ["finance"],
        },
        headers=admin,
    )
    assert answer.status_code == 201, answer.text
    source_id: str = answer.json()["id"]
    return source_id


def _verified(secret: str, received: Received) -> Any:
    # The reference implementation, not ours, says whether the signature holds.
    return Webhook(secret).verify(received.body, received.headers)


def test_an_act_reaches_the_receiver_signed_as_standard_webhooks_says(
    client: TestClient[Any],
    admin: dict[str, str],
    receiver: Receiver,
    settings: Settings,
) -> None:
    created = _create(client, admin, url=receiver.url, events=["source.registered"])
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert client.get(f"/v1/webhooks/{created['id']}", headers=admin).json().get("secret") is None
    source_id = _register(client, admin, settings.csv_root, "orders")
    (received,) = receiver.wait_for(1)
    payload = _verified(secret, received)
    assert payload["type"] == "source.registered"
    assert payload["data"]["source_id"] == source_id
    assert payload["data"]["action"] == "source.registered"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["user-agent"].startswith("tdb/")
    deliveries = client.get(f"/v1/webhooks/{created['id']}/deliveries", headers=admin)
    (delivery,) = deliveries.json()
    assert delivery["id"] == received.headers["webhook-id"]
    assert delivery["state"] in ("pending", "succeeded")


def test_a_rotated_secret_signs_beside_the_old_one_new_first(
    client: TestClient[Any], admin: dict[str, str], receiver: Receiver
) -> None:
    created = _create(client, admin, url=receiver.url, events=["webhook.ping"])
    rotated = client.post(
        f"/v1/webhooks/{created['id']}/rotate", json={"overlap_seconds": 60}, headers=admin
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert client.post(f"/v1/webhooks/{created['id']}/ping", headers=admin).status_code == 202
    (received,) = receiver.wait_for(1)
    signatures = received.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert _verified(new, received)["type"] == "webhook.ping"
    assert _verified(created["secret"], received)["type"] == "webhook.ping"
    only_new = {**received.headers, "webhook-signature": signatures[0]}
    Webhook(new).verify(received.body, only_new)


def test_410_disables_the_endpoint_and_a_failure_is_retried_then_failed(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    statuses = {"gone": 410, "broken": 500}

    def answer(received: Received) -> Answer:
        return Answer(statuses[received.path.rsplit("/", 1)[-1]])

    with Receiver(answer).running() as receiver:
        gone = _create(client, admin, url=receiver.url + "/gone", events=["webhook.ping"])
        broken = _create(client, admin, url=receiver.url + "/broken", events=["webhook.ping"])
        for endpoint in (gone, broken):
            client.post(f"/v1/webhooks/{endpoint['id']}/ping", headers=admin)
        # One to the gone endpoint, three (the first and two retries) to the broken one.
        receiver.wait_for(4)
        shown = client.get(f"/v1/webhooks/{gone['id']}", headers=admin).json()
        assert (shown["enabled"], shown["disabled_reason"]) == (False, "gone")
        failed = _wait_state(client, admin, broken["id"], "failed")
        assert [a["status_code"] for a in failed["attempts"]] == [500, 500, 500]
        assert {a["error"] for a in failed["attempts"]} == {"status"}
        scraped = client.get("/metrics").text
        assert 'tdb_webhook_deliveries_total{outcome="status"}' in scraped
        assert "tdb_webhook_delivery_seconds_count" in scraped
        assert "tdb_webhook_pending" in scraped
        redone = client.post(
            f"/v1/webhooks/{broken['id']}/deliveries/{failed['id']}/redeliver", headers=admin
        )
        assert redone.status_code == 202
        receiver.wait_for(5)


def _wait_state(
    client: TestClient[Any], admin: dict[str, str], endpoint_id: str, state: str
) -> dict[str, Any]:
    for _ in range(400):
        answer = client.get(
            f"/v1/webhooks/{endpoint_id}/deliveries", params={"state": state}, headers=admin
        )
        if answer.json():
            found: dict[str, Any] = answer.json()[0]
            return found
        client.get("/healthz")  # a round trip lets the app's sender run meanwhile
    raise AssertionError(f"no delivery reached {state}")


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"events": ["*"]}, "url"),
    ({"url": "ftp://example.com/x", "events": ["*"]}, "url"),
    ({"url": "http://example.com/x", "events": ["*"]}, "url"),
    ({"url": "https://user:pw@example.com/x", "events": ["*"]}, "url"),
    ({"url": "https://example.com/" + "x" * 2000, "events": ["*"]}, "url"),
    ({"url": "https://unknown.example/x", "events": ["*"]}, "url"),
    # Refused by the outbound policy (TDB_DENIED_NETWORKS holds 127.0.0.2/32).
    ({"url": "http://127.0.0.2/hook", "events": ["*"]}, "url"),
    ({"url": "http://127.0.0.1/hook"}, "events"),
    ({"url": "http://127.0.0.1/hook", "events": []}, "events"),
    ({"url": "http://127.0.0.1/hook", "events": ["source.nope"]}, "events[0]"),
    ({"url": "http://127.0.0.1/hook", "events": ["*", "*"]}, "events"),
    ({"url": "http://127.0.0.1/hook", "events": ["*"], "breaking_only": "yes"}, "breaking_only"),
    ({"url": "http://127.0.0.1/hook", "events": ["*"], "source_ids": ["x"]}, "source_ids[0]"),
    ({"url": "http://127.0.0.1/hook", "events": ["*"], "tags": [""]}, "tags[0]"),
    ({"url": "http://127.0.0.1/hook", "events": ["*"], "description": 5}, "description"),
    ({"url": "http://127.0.0.1/hook", "events": ["*"], "secret": "x"}, "secret"),
    ({"url": "http://127.0.0.1/hook", "events": ["*"], "extra": 1}, "extra"),
    ([], "body"),  # type: ignore[list-item]
]


def test_every_bad_field_is_a_400_naming_it(client: TestClient[Any], admin: dict[str, str]) -> None:
    for body, field in BAD_BODIES:
        answer = client.post("/v1/webhooks", json=body, headers=admin)
        assert answer.status_code == 400, (body, answer.text)
        assert field in [e["field"] for e in answer.json()["errors"]], (body, answer.text)
    assert client.get("/v1/webhooks", headers=admin).json() == []


def test_patch_and_rotate_fields_are_checked_too(
    client: TestClient[Any], admin: dict[str, str], receiver: Receiver
) -> None:
    created = _create(client, admin, url=receiver.url, events=["*"])
    path = f"/v1/webhooks/{created['id']}"
    for body, field in (
        ({"url": "http://127.0.0.2/x"}, "url"),
        ({"url": None}, "url"),
        ({"enabled": "no"}, "enabled"),
        ({"id": "x"}, "id"),
    ):
        answer = client.patch(path, json=body, headers=admin)
        assert answer.status_code == 400, answer.text
        assert field in [e["field"] for e in answer.json()["errors"]]
    for overlap in (-1, 604801, "1"):
        answer = client.post(f"{path}/rotate", json={"overlap_seconds": overlap}, headers=admin)
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["field"] == "overlap_seconds"
    patched = client.patch(
        path, json={"description": "ops", "tags": ["finance"], "enabled": False}, headers=admin
    )
    assert patched.status_code == 200
    assert (patched.json()["description"], patched.json()["enabled"]) == ("ops", False)
    trail = client.get("/v1/events", headers=admin).json()
    actions = [e["action"] for e in trail if e["webhook_id"] == created["id"]]
    assert actions == ["webhook.created", "webhook.updated"]
    assert client.delete(path, headers=admin).status_code == 204
    assert client.get(path, headers=admin).status_code == 404
    assert client.get(f"{path}/deliveries", headers=admin).status_code == 404


def test_webhooks_need_their_scope_and_secrets_stay_out_of_everything(
    client: TestClient[Any], admin: dict[str, str], container: Container, receiver: Receiver
) -> None:
    reader = on_app(client, container.create_api_key(), "reader", ("sources:read",), OPERATOR).token
    denied = client.get("/v1/webhooks", headers={"Authorization": f"Bearer {reader}"})
    assert denied.status_code == 403
    assert denied.json()["required_scope"] == "webhooks:manage"
    created = _create(client, admin, url=receiver.url, events=["*"])
    secret = created["secret"]
    client.post(f"/v1/webhooks/{created['id']}/ping", headers=admin)
    receiver.wait_for(1)
    for path in ("/v1/webhooks", f"/v1/webhooks/{created['id']}", "/v1/events", "/metrics"):
        assert secret not in client.get(path, headers=admin).text
    assert secret.removeprefix("whsec_") not in json.dumps(
        [attrs.asdict(r) for r in receiver.received], default=str
    )


def test_a_stalled_endpoint_never_delays_another(
    client: TestClient[Any], admin: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    release = threading.Event()
    with (
        Receiver(lambda _: Answer(204, hold=release)).running() as stalled,
        Receiver().running() as healthy,
    ):
        slow = _create(client, admin, url=stalled.url, events=["webhook.ping"])
        quick = _create(client, admin, url=healthy.url, events=["webhook.ping"])
        for _ in range(12):
            client.post(f"/v1/webhooks/{slow['id']}/ping", headers=admin)
        stalled.wait_for(4)  # every slot of the stalled endpoint is taken
        client.post(f"/v1/webhooks/{quick['id']}/ping", headers=admin)
        healthy.wait_for(1)
        # TDB_WEBHOOK_CONCURRENCY (4) attempts at once, never more, on the stalled endpoint.
        assert len(stalled.received) == 4
        release.set()
        stalled.wait_for(12)
    logged = capfd.readouterr()
    for secret in (slow["secret"], quick["secret"]):
        assert secret.removeprefix("whsec_") not in logged.out + logged.err
