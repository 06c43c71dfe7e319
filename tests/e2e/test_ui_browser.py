"""The web UI in a real headless Chromium, against a real `tdb serve`: every page passes
axe-core with no serious or critical violation, asks no other host for anything, and works
with JavaScript off.

One browser for the whole session, one server for this module (seeded once through the API);
each test has a fresh browser context (its own cookies)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import TdbServer, run_tdb

playwright_api = pytest.importorskip("playwright.sync_api")
axe_api = pytest.importorskip("axe_playwright_python.sync_playwright")

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
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
SERIOUS = {"serious", "critical"}


# One browser per module, not per session: Playwright's sync API keeps an event loop running in
# this thread while it is open, and the modules after this one need none running.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    # Never a browser of Playwright's own: only the system's, at its path.
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Site:
    """The seeded server: its URL, an admin token, a reader token, the sources' ids."""

    def __init__(self, server: TdbServer, admin: str, reader: str, ids: dict[str, str]) -> None:
        self.server = server
        self.url = server.url
        self.admin = admin
        self.reader = reader
        self.ids = ids


def _write(data: Path, name: str, text: str) -> None:
    (data / name).write_text(text)


def _seed(server: TdbServer, data: Path) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {server.admin_token()}"}
    ids = {}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        _write(data, "orders.csv", "id,customer,total,ordered_on\n1,ACME,19.90,2026-05-01\n")
        for n in range(55):
            name = "orders" if n == 0 else f"feed-{n:02d}"
            tags = ["finance", "production"] if n % 2 == 0 else ["staging"]
            created = api.post(
                "/v1/sources",
                json={
                    "name": name,
                    "source_type": "csv",
                    "connection": {"path": "orders.csv"},
                    "description": f"Source number {n}",
                    "tags": tags,
                },
            )
            assert created.status_code == 201, created.text
            ids[name] = created.json()["id"]
        # A history of three snapshots: a column retyped and one removed (breaking), then one
        # added (not breaking).
        orders = ids["orders"]
        assert api.get(f"/v1/sources/{orders}/schema").status_code == 200
        _write(data, "orders.csv", "id,customer,total\nx1,ACME,19.90\n")
        assert api.get(f"/v1/sources/{orders}/schema").status_code == 200
        _write(data, "orders.csv", "id,customer,total,region\nx1,ACME,19.90,EU\n")
        assert api.get(f"/v1/sources/{orders}/schema").status_code == 200
    return ids


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("ui")
    (workdir / "data").mkdir()
    server = TdbServer(workdir, {"TDB_ACCESS_LOG": "off"}).start()
    try:
        admin = server.admin_token()
        assert admin, server.stdout
        ids = _seed(server, workdir / "data")
        reader = (
            run_tdb(workdir, {}, "keys", "create", "--name", "reader", "--scope", "sources:read")
            .strip()
            .splitlines()[-1]
        )
        yield Site(server, admin, reader, ids)
    finally:
        server.stop()


class Tab:
    """A page in a context of its own, which records every request it makes."""

    def __init__(self, browser: Any, site: Site, javascript: bool = True) -> None:
        self.site = site
        self.javascript = javascript
        self.context = browser.new_context(java_script_enabled=javascript)
        self.page = self.context.new_page()
        self.requested: list[str] = []
        self.page.on("request", lambda request: self.requested.append(request.url))
        # Anything for another host is refused before it leaves, and the test then fails.
        self.context.route("**/*", self._only_loopback)
        self.checked: list[str] = []

    def _only_loopback(self, route: Any) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            route.abort()

    def go(self, path: str) -> Any:
        response = self.page.goto(self.site.url + path)
        return response

    def sign_in(self, token: str, check: bool = False) -> None:
        self.go("/ui/")
        assert "/ui/sign-in" in self.page.url
        if check:
            self.check()
        self.page.get_by_label("API key").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        assert self.page.url.endswith("/ui/sources")

    def check(self) -> None:
        """axe-core on the page as it is now: no serious or critical violation."""
        results = axe_api.Axe().run(self.page)
        bad = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in results.response["violations"]
            if v["impact"] in SERIOUS
        ]
        assert bad == [], f"{self.page.url}: {bad}"
        self.checked.append(urlsplit(self.page.url).path)

    def close(self) -> None:
        self.context.close()
        foreign = [u for u in self.requested if urlsplit(u).hostname not in LOOPBACK]
        assert foreign == []
        assert self.requested, "the page made no request at all"


@pytest.fixture
def tab(browser: Any, site: Site) -> Iterator[Tab]:
    opened = Tab(browser, site)
    yield opened
    opened.close()


def test_sign_in_then_the_sources_filtered_and_paged(tab: Tab) -> None:
    tab.sign_in(tab.site.admin, check=True)
    tab.check()
    rows = tab.page.locator("tbody tr")
    assert rows.count() == 50
    tab.page.get_by_role("link", name="Next page").click()
    assert tab.page.locator("tbody tr").count() == 5
    tab.check()
    tab.go("/ui/sources")
    tab.page.get_by_label("Tag").fill("staging")
    tab.page.get_by_label("Name starts with").fill("feed-1")
    tab.page.get_by_role("button", name="Filter").click()
    names = tab.page.locator("tbody tr td:first-child").all_inner_texts()
    assert names == ["feed-11", "feed-13", "feed-15", "feed-17", "feed-19"]
    tab.check()


def test_a_source_its_connection_test_in_place_and_its_schema(tab: Tab) -> None:
    tab.sign_in(tab.site.admin)
    orders = tab.site.ids["orders"]
    tab.go(f"/ui/sources/{orders}")
    tab.check()
    before = tab.page.url
    tab.page.get_by_role("button", name="Test the connection").click()
    result = tab.page.locator("#test-result")
    result.get_by_text("Connected").wait_for()
    assert tab.page.url == before  # answered in place by the script
    tab.check()
    tab.page.get_by_role("link", name="Schema").click()
    assert tab.page.locator("tbody tr").count() == 4
    tab.check()


def test_the_history_marks_breaking_changes_and_compares_any_two(tab: Tab) -> None:
    tab.sign_in(tab.site.admin)
    tab.go(f"/ui/sources/{tab.site.ids['orders']}/history")
    entries = tab.page.locator(".timeline > li")
    assert entries.count() == 3
    assert entries.nth(1).locator(".breaking-badge").count() == 1  # snapshot 2: breaking
    assert entries.nth(0).locator(".breaking-badge").count() == 0  # snapshot 3: a column added
    tab.check()
    tab.page.get_by_label("Compare snapshot").select_option("1")
    tab.page.get_by_label("with snapshot").select_option("3")
    tab.page.get_by_role("button", name="Compare").click()
    table = tab.page.locator("table.side-by-side")
    assert "Snapshot 1" in table.locator("thead").inner_text()
    breaking = table.locator("tr.breaking")
    assert breaking.count() == 2  # ordered_on removed, id from integer to text
    assert "removed" in breaking.nth(0).inner_text()
    tab.check()


def test_register_edit_and_delete_through_the_forms(tab: Tab) -> None:
    tab.sign_in(tab.site.admin)
    tab.page.get_by_role("link", name="Register a source").click()
    tab.check()
    tab.page.get_by_label("Type").select_option("csv")
    tab.page.get_by_role("button", name="Choose this type").click()
    tab.page.get_by_label("Name").fill("from-the-ui")
    tab.page.get_by_label("path").fill("../outside.csv")
    tab.page.get_by_role("button", name="Register").click()
    assert tab.page.get_by_role("alert").count() == 1  # the API's 400, on the form
    assert "connection.path" in tab.page.get_by_role("alert").inner_text()
    tab.check()
    tab.page.get_by_label("path").fill("orders.csv")
    tab.page.get_by_label("Tags").fill("ui, made")
    tab.page.get_by_role("button", name="Register").click()
    assert tab.page.get_by_role("heading", level=1).inner_text() == "from-the-ui"
    tab.page.get_by_role("link", name="Edit").click()
    tab.check()
    tab.page.get_by_label("Description").fill("Changed in a browser")
    tab.page.get_by_role("button", name="Save").click()
    assert "Changed in a browser" in tab.page.locator(".record").inner_text()
    tab.page.get_by_role("link", name="Delete").click()
    tab.check()
    tab.page.get_by_role("button", name="Delete the source").click()
    assert tab.page.get_by_role("status").inner_text() == "The source was deleted."


def test_the_events_page(tab: Tab) -> None:
    tab.sign_in(tab.site.admin)
    tab.page.get_by_role("link", name="Events").click()
    tab.check()
    tab.page.get_by_label("Action").select_option("source.schema_changed")
    tab.page.get_by_role("button", name="Filter").click()
    assert tab.page.locator("tbody tr").count() == 3
    assert tab.page.locator("tbody tr.breaking").count() == 1
    tab.check()


def test_an_error_page_and_a_readers_pages(tab: Tab) -> None:
    tab.sign_in(tab.site.reader)
    assert tab.page.get_by_role("link", name="Register a source").count() == 0
    assert tab.page.get_by_role("link", name="Events").count() == 0
    assert tab.page.get_by_role("link", name="Webhooks").count() == 0
    assert tab.page.get_by_role("link", name="Keys").count() == 0
    tab.go(f"/ui/sources/{tab.site.ids['orders']}")
    assert tab.page.get_by_role("link", name="Edit").count() == 0
    tab.check()
    answer = tab.go("/ui/sources/new")
    assert answer.status == 403
    tab.check()


def test_without_javascript_every_form_still_works(browser: Any, site: Site) -> None:
    tab = Tab(browser, site, javascript=False)
    try:
        tab.sign_in(site.admin)
        tab.go(f"/ui/sources/{site.ids['orders']}")
        tab.page.get_by_role("button", name="Test the connection").click()
        assert tab.page.url.endswith("/test")  # a whole page came back
        assert "Connected" in tab.page.locator("#test-result").inner_text()
    finally:
        tab.close()


def test_the_column_search_and_the_keys_page(tab: Tab) -> None:
    tab.sign_in(tab.site.admin)
    tab.page.get_by_role("link", name="Columns").click()
    tab.check()
    tab.page.get_by_label("Column name").fill("CUST*")
    tab.page.get_by_role("button", name="Search").click()
    assert tab.page.locator("tbody tr td:first-child").all_inner_texts() == ["customer"]
    tab.check()
    tab.page.get_by_role("link", name="orders").click()
    assert tab.page.get_by_role("heading", level=1).inner_text() == "orders"
    tab.page.get_by_role("link", name="Keys").click()
    tab.check()
    tab.page.get_by_label("Name").fill("from-the-ui")
    tab.page.get_by_label("sources:read", exact=True).check()
    tab.page.get_by_label("Expires in (days)").fill("7")
    tab.page.get_by_role("button", name="Create the key").click()
    assert tab.page.get_by_role("status").locator(".secret-value").inner_text().startswith("tdbk_")
    tab.check()
    tab.page.get_by_role("link", name="Back to the keys").click()
    tab.page.get_by_role("link", name="Revoke from-the-ui").click()
    tab.check()
    tab.page.get_by_role("button", name="Revoke the key").click()
    row = tab.page.locator("tbody tr", has_text="from-the-ui")
    assert "revoked" in row.inner_text()


def test_a_webhook_added_pinged_edited_rotated_and_deleted(tab: Tab) -> None:
    tab.sign_in(tab.site.admin)
    tab.page.get_by_role("link", name="Webhooks").click()
    tab.check()
    tab.page.get_by_role("link", name="Add an endpoint").click()
    tab.check()
    tab.page.get_by_label("URL").fill("ftp://127.0.0.1/hook")
    tab.page.get_by_role("button", name="Add the endpoint").click()
    alert = tab.page.get_by_role("alert").inner_text()
    # The API's 400, on the form, naming both fields.
    assert "url" in alert
    assert "events" in alert
    tab.check()
    tab.page.get_by_label("URL").fill("http://127.0.0.1:9/hook")
    tab.page.get_by_label("webhook.ping", exact=True).check()
    tab.page.get_by_role("button", name="Add the endpoint").click()
    assert tab.page.locator(".secret-value").inner_text().startswith("whsec_")
    tab.check()
    tab.page.get_by_role("link", name="Go to the endpoint").click()
    tab.page.get_by_role("button", name="Send a ping").click()
    assert tab.page.locator("table.deliveries tbody tr").count() == 1
    tab.check()
    tab.page.get_by_label("State").select_option("succeeded")
    tab.page.get_by_role("button", name="Filter").click()
    assert tab.page.locator("table.deliveries").count() == 0
    tab.page.get_by_role("link", name="Edit").click()
    tab.check()
    tab.page.get_by_label("Description").fill("Changed in a browser")
    tab.page.get_by_role("button", name="Save").click()
    assert "Changed in a browser" in tab.page.locator(".record").inner_text()
    tab.page.get_by_role("button", name="Rotate the secret").click()
    assert tab.page.locator(".secret-value").inner_text().startswith("whsec_")
    tab.page.get_by_role("link", name="Go to the endpoint").click()
    tab.page.get_by_role("link", name="Delete").click()
    tab.check()
    tab.page.get_by_role("button", name="Delete the endpoint").click()
    assert "was deleted" in tab.page.get_by_role("status").inner_text()
