"""A process that starts while its store is down serves 503s, then recovers without a restart."""

from __future__ import annotations

from litestar.testing import TestClient

from adapters.crypto import generate_key
from entrypoints.container import build_container
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.helpers import free_port


def test_an_app_whose_store_is_down_starts_and_answers_503() -> None:
    settings = Settings(
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere",
        secret_key=generate_key().decode(),
        store_timeout=1,
    )
    container = build_container(settings)
    try:
        with TestClient(create_app(container)) as client:
            assert client.get("/healthz").status_code == 200
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["reason"] == "store_unavailable"
            response = client.get("/v1/sources", headers={"Authorization": "Bearer tdbk_a_b"})
            assert response.status_code == 503
            assert response.headers["content-type"].startswith("application/problem+json")
    finally:
        container.shutdown_resources()
