"""How long the web UI's pages take to render server-side, with 10,000 sources.

In process: the app `tdb serve` runs (`create_app`), on a SQLite store in a temporary
directory filled through the register use case, driven through Litestar's test client (its
own overhead included, so the figures are an upper bound). Each page is asked for `--rounds`
times after a warm-up; the median and the 90th percentile are printed, in milliseconds.

    .venv/bin/python bench/ui_bench.py [--sources 10000] [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application.sources import RegisterSourceCommand
from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from entrypoints.operator import OPERATOR
from entrypoints.settings import Settings
from entrypoints.startup import stop_worker

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _fill(container: Container, count: int, data: Path) -> list[str]:
    try:
        return await _registered(container, count, data)
    finally:
        await stop_worker(container)


async def _registered(container: Container, count: int, data: Path) -> list[str]:
    await container.upgrade_store()()
    register = container.register_source()
    ids = []
    (data / "orders.csv").write_text("id,customer,total\n1,ACME,19.90\n")
    for n in range(count):
        command = RegisterSourceCommand(
            actor=OPERATOR,
            name=f"source-{n:05d}",
            source_type="csv" if n % 2 else "postgres",
            connection={"path": "orders.csv"}
            if n % 2
            else {
                "host": "127.0.0.1",
                "dbname": "d",
                "user": "u",
                "table": f"t{n}",
                "password": "p",
            },
            description=f"Source number {n}",
            tags=("finance",) if n % 3 == 0 else ("staging",),
        )
        ids.append(str((await register(command)).id))
    issued = await container.create_api_key()("bench", (), OPERATOR)
    ids.append(issued.token)
    return ids


def _timed(
    client: TestClient[Any], path: str, rounds: int, headers: dict[str, str] | None = None
) -> tuple[float, float]:
    for _ in range(5):
        assert client.get(path, headers=headers).status_code == 200, path
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, path
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument(
        "--keep", type=Path, help="a directory to keep the filled store in, and reuse from"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        data = where / "data"
        data.mkdir(parents=True, exist_ok=True)
        settings = Settings(
            database_url=f"sqlite:///{where}/tdb.sqlite3", csv_root=data, access_log=False
        )
        filled = where / "filled.txt"
        if not filled.exists():
            started = time.perf_counter()
            made = asyncio.run(_fill(build_container(settings), args.sources, data))
            print(f"{args.sources} sources registered in {time.perf_counter() - started:.1f} s")
            filled.write_text("\n".join(made))
        *ids, token = filled.read_text().split("\n")
        container = build_container(settings)
        with TestClient(create_app(container)) as client:
            form = client.get("/ui/sign-in").text
            csrf = CSRF.search(form)
            assert csrf is not None
            signed = client.post("/ui/sign-in", data={"token": token, "csrf_token": csrf[1]})
            assert signed.status_code == 200, signed.text
            # A CSV source with a history (its schema read once) in the middle of the list.
            middle = ids[len(ids) // 2 + 1]
            assert client.get(f"/ui/sources/{middle}/schema").status_code == 200
            last_page = client.get("/ui/sources?name_prefix=source-099").text
            bearer = {"Authorization": f"Bearer {token}"}
            hook = client.post(
                "/v1/webhooks",
                json={"url": "http://127.0.0.1:9/hook", "events": ["*"]},
                headers=bearer,
            ).json()["id"]
            assert client.post(f"/v1/webhooks/{hook}/ping", headers=bearer).status_code == 202
            pages = {
                "sign-in": "/ui/sign-in",
                "sources, first page": "/ui/sources",
                "sources, tag filter": "/ui/sources?tag=finance",
                "sources, name prefix": "/ui/sources?name_prefix=source-099",
                "sources, a page deep in": "/ui/sources?" + _after(client, 9_900),
                "a source": f"/ui/sources/{middle}",
                "edit form": f"/ui/sources/{middle}/edit",
                "delete confirmation": f"/ui/sources/{middle}/delete",
                "history (timeline)": f"/ui/sources/{middle}/history",
                "history, two compared": f"/ui/sources/{middle}/history?a=1&b=1",
                "register form": "/ui/sources/new?source_type=postgres",
                "events, first page": "/ui/events",
                "events, one source": f"/ui/events?source_id={middle}",
                "columns, a name": "/ui/columns?name=id",
                "columns, a wildcard": "/ui/columns?name=*o*",
                "webhooks": "/ui/webhooks",
                "a webhook, deliveries": f"/ui/webhooks/{hook}",
                "keys": "/ui/keys",
            }
            assert "source-09900" in last_page
            # For scale: the API's own answer, for the same first page of 50 (JSON, no page).
            p50, p90 = _timed(client, "/v1/sources?limit=50", args.rounds, bearer)
            print(f"{'page':<28} {'p50 ms':>8} {'p90 ms':>8}")
            print(f"{'(API: GET /v1/sources?limit=50)':<28} {p50:8.1f} {p90:8.1f}")
            for name, path in pages.items():
                p50, p90 = _timed(client, path, args.rounds)
                print(f"{name:<28} {p50:8.1f} {p90:8.1f}")
        container.shutdown_resources()


def _after(client: TestClient[Any], skip: int) -> str:
    """The query of the listing's page that starts after `skip` sources (followed page by
    page, as a person clicking Next would get there)."""
    path = "/ui/sources"
    for _ in range(skip // 50):
        html = client.get(path).text
        found = re.search(r'href="(/ui/sources\?[^"]*)" rel="next"', html)
        assert found is not None
        path = found[1].replace("&amp;", "&")
    return path.partition("?")[2]


if __name__ == "__main__":
    main()
