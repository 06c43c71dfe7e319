"""At least once, across a crash: a `tdb serve` SIGKILLed while a receiver holds its delivery
leaves that delivery pending in the store, and another `tdb serve` on the same store sends it,
the same delivery (same webhook-id, same body), once the lease has lapsed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks import Webhook

from tests.receivers import Answer, Received, Receiver

LEASE = "1"


def test_a_delivery_interrupted_by_sigkill_is_sent_by_another_server(
    serve: Any, store_env: dict[str, str], tmp_path: Path
) -> None:
    release = threading.Event()
    held: list[Received] = []

    def answer(received: Received) -> Answer:
        if not held:
            held.append(received)
            return Answer(204, hold=release)
        return Answer(204)

    env = {**store_env, "TDB_WEBHOOK_LEASE": LEASE, "TDB_WEBHOOK_POLL": "0.05"}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "orders.csv").write_text("id\n1\n")
    with Receiver(answer).running() as receiver:
        first = serve(env)
        token = first.admin_token()
        admin = {"Authorization": f"Bearer {token}"}
        created = httpx.post(
            f"{first.url}/v1/webhooks",
            json={"url": receiver.url, "events": ["source.registered"]},
            headers=admin,
        ).json()
        registered = httpx.post(
            f"{first.url}/v1/sources",
            json={"name": "orders", "source_type": "csv", "connection": {"path": "orders.csv"}},
            headers=admin,
        )
        assert registered.status_code == 201
        # The first attempt is in the receiver's hands: the server dies before it hears back.
        receiver.wait_for(1)
        first.kill()
        release.set()
        second = serve(env)
        interrupted, resent = receiver.wait_for(2, timeout=20)
        assert resent.headers["webhook-id"] == interrupted.headers["webhook-id"]
        assert resent.body == interrupted.body
        payload = Webhook(created["secret"]).verify(resent.body, resent.headers)
        assert payload["data"]["source_id"] == registered.json()["id"]
        deliveries = _until_succeeded(second.url, created["id"], admin)
        assert [d["id"] for d in deliveries] == [resent.headers["webhook-id"]]
        assert len(deliveries[0]["attempts"]) == 1  # the killed attempt was never recorded


def _until_succeeded(url: str, webhook_id: str, admin: dict[str, str]) -> Any:
    for _ in range(200):
        answer = httpx.get(
            f"{url}/v1/webhooks/{webhook_id}/deliveries",
            params={"state": "succeeded"},
            headers=admin,
        ).json()
        if answer:
            return answer
    raise AssertionError("the resent delivery was never recorded as succeeded")
