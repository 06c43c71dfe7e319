"""The pictures of the web UI in docs/ui/: a throwaway `tdb serve` on a free loopback port and
a throwaway store, seeded through the API, photographed in Debian's headless Chromium.

    .venv/bin/python scripts/ui_screenshots.py [--out docs/ui]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = re.compile(r"^(tdbk_[0-9a-f]+_[A-Za-z0-9_-]+)$", re.MULTILINE)
SOURCES = [
    ("orders", ["finance", "production"], "Order records, nightly export"),
    ("customers", ["crm", "production"], "Customer master data"),
    ("invoices", ["finance"], "Invoices issued"),
    ("web-sessions", ["analytics"], "Clickstream sessions"),
    ("stock-levels", ["warehouse", "staging"], "Stock per warehouse and day"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(workdir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port = _free_port()
    tdb = shutil.which("tdb", path=str(Path(sys.executable).parent))
    assert tdb, "install tdb in this environment first"
    out = (workdir / "serve.out").open("wb")
    server = subprocess.Popen(
        [tdb, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        cwd=workdir,
        stdout=out,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    token = TOKEN.findall((workdir / "serve.out").read_text())[-1]
    return server, url, token


def _seed(url: str, token: str, data: Path) -> tuple[str, str]:
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
    ids = {}
    for name, tags, description in SOURCES:
        (data / f"{name}.csv").write_text("id,customer,total,ordered_on\n1,ACME,19.90,2026-05-01\n")
        created = api.post(
            "/v1/sources",
            json={
                "name": name,
                "source_type": "csv",
                "connection": {"path": f"{name}.csv"},
                "description": description,
                "tags": tags,
            },
        ).json()
        ids[name] = created["id"]
    orders = ids["orders"]
    api.get(f"/v1/sources/{orders}/schema")
    (data / "orders.csv").write_text("id,customer,total\nA1,ACME,19.90\n")
    api.get(f"/v1/sources/{orders}/schema")
    (data / "orders.csv").write_text("id,customer,total,region\nA1,ACME,19.90,EU\n")
    api.get(f"/v1/sources/{orders}/schema")
    for name in ids:
        api.get(f"/v1/sources/{ids[name]}/schema")
    hook = api.post(
        "/v1/webhooks",
        json={
            "url": "http://127.0.0.1:9/hook",
            "events": ["source.schema_changed", "webhook.ping"],
        },
    ).json()["id"]
    api.post(f"/v1/webhooks/{hook}/ping")
    api.post(
        "/v1/keys", json={"name": "ci-reader", "scopes": ["sources:read"], "expires_in_days": 90}
    )
    return orders, hook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/ui"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "data").mkdir()
        server, url, token = _serve(workdir)
        try:
            orders, hook = _seed(url, token, workdir / "data")
            shots = {
                "sign-in": "/ui/sign-in",
                "sources": "/ui/sources",
                "source": f"/ui/sources/{orders}",
                "schema": f"/ui/sources/{orders}/schema",
                "history": f"/ui/sources/{orders}/history?a=1&b=3",
                "edit": f"/ui/sources/{orders}/edit",
                "events": "/ui/events",
                "columns": "/ui/columns?name=*o*",
                "webhook": f"/ui/webhooks/{hook}",
                "keys": "/ui/keys",
            }
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1200, "height": 800})
                page.goto(url + "/ui/sign-in")
                page.screenshot(path=args.out / "sign-in.png", full_page=True)
                page.get_by_label("API key").fill(token)
                page.get_by_role("button", name="Sign in").click()
                for name, path in shots.items():
                    if name == "sign-in":
                        continue
                    page.goto(url + path)
                    if name == "source":
                        page.get_by_role("button", name="Test the connection").click()
                        page.locator("#test-result").get_by_text("Connected").wait_for()
                    page.screenshot(path=args.out / f"{name}.png", full_page=True)
                    print(args.out / f"{name}.png")
                browser.close()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=15)


if __name__ == "__main__":
    main()
