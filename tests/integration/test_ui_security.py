"""The web UI's security rules, without a browser: the session cookie, CSRF, what a reader is
offered, revocation, and that forms answer as the API does."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

import attrs
import pytest
from litestar.testing import TestClient

from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from entrypoints.operator import OPERATOR
from entrypoints.settings import Settings
from tests.builders import body
from tests.helpers import on_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
POST_FORM = re.compile(r'<form method="post" action="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html
    return found.group(1)


def set_cookies(response: Any) -> list[SimpleCookie]:
    cookies = []
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        cookies.append(jar)
    return cookies


def sign_in(client: TestClient[Any], token: str) -> Any:
    form = client.get("/ui/sign-in")
    assert form.status_code == 200
    return client.post(
        "/ui/sign-in",
        data={"token": token, "csrf_token": csrf_of(form.text), "next": "/ui/sources"},
        follow_redirects=False,
    )


def registered(client: TestClient[Any], token: str, name: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    response = client.post("/v1/sources", json=body(name=name), headers=headers)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


def test_the_session_cookie_is_sealed_httponly_strict_and_holds_no_token(
    client: TestClient[Any], make_token: Any
) -> None:
    token = make_token()
    answer = sign_in(client, token)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/sources"
    [jar] = set_cookies(answer)
    morsel = jar["tdb_session"]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "strict"
    assert morsel["path"] == "/ui"
    assert not morsel["secure"]  # plain HTTP: a Secure cookie would never come back
    secret = token.split("_", 2)[2]  # tdbk_<key id>_<secret>: the secret may hold "_" itself
    for header in answer.headers.get_list("set-cookie"):
        assert token not in header
        assert secret not in header
    assert client.get("/ui/sources").status_code == 200


def test_over_tls_the_cookie_is_secure(container: Container) -> None:
    with TestClient(create_app(container), base_url="https://testserver.local") as client:
        token = on_app(client, container.create_api_key(), "tls", (), OPERATOR).token
        [jar] = set_cookies(sign_in(client, token))
        assert jar["tdb_session"]["secure"] is True


def test_behind_a_tls_proxy_the_cookie_can_be_told_to_be_secure(settings: Settings) -> None:
    container = build_container(attrs.evolve(settings, ui_secure_cookie=True))
    try:
        with TestClient(create_app(container)) as client:
            # Plain HTTP here: the client then keeps the cookie to itself, as a browser would.
            [jar] = set_cookies(client.get("/ui/sign-in"))
            assert jar["tdb_session"]["secure"] is True
    finally:
        container.shutdown_resources()


def test_a_page_without_a_session_sends_to_sign_in(client: TestClient[Any]) -> None:
    answer = client.get("/ui/sources?name_prefix=a", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/sign-in?next=%2Fui%2Fsources%3Fname_prefix%3Da"


def test_a_changed_cookie_is_no_session(client: TestClient[Any], make_token: Any) -> None:
    sign_in(client, make_token())
    sealed = client.cookies["tdb_session"]
    client.cookies.set("tdb_session", sealed[:-4] + ("AAAA" if sealed[-4:] != "AAAA" else "BBBB"))
    answer = client.get("/ui/sources", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/sign-in")


def test_a_revoked_key_ends_its_session(
    client: TestClient[Any], container: Container, make_token: Any
) -> None:
    token = make_token(name="soon-revoked")
    sign_in(client, token)
    assert client.get("/ui/sources").status_code == 200
    key_id = token.split("_")[1]
    on_app(client, container.revoke_api_key(), key_id, OPERATOR)
    answer = client.get("/ui/sources", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/sign-in")


def test_a_wrong_key_is_refused_with_the_apis_status(client: TestClient[Any]) -> None:
    answer = sign_in(client, "tdbk_0000_nope")
    assert answer.status_code == 401
    assert "not valid" in answer.text
    assert (
        "tdb_session" not in client.cookies
        or client.get("/ui/sources", follow_redirects=False).status_code == 303
    )


def test_a_form_without_the_sessions_csrf_token_changes_nothing(
    client: TestClient[Any], make_token: Any
) -> None:
    token = make_token()
    sign_in(client, token)
    form = {"source_type": "csv", "name": "forged", "connection.path": "x.csv"}
    for csrf in (None, "not-the-token"):
        data = form if csrf is None else {**form, "csrf_token": csrf}
        answer = client.post("/ui/sources/new", data=data, follow_redirects=False)
        assert answer.status_code == 403
        assert "did not come from this site" in answer.text
    listed = client.get("/v1/sources", headers={"Authorization": f"Bearer {token}"}).json()
    assert [s["name"] for s in listed] == []


def test_the_sign_in_form_needs_its_csrf_token_too(
    client: TestClient[Any], make_token: Any
) -> None:
    answer = client.post("/ui/sign-in", data={"token": make_token()}, follow_redirects=False)
    assert answer.status_code == 403
    assert "tdb_session" not in "".join(answer.headers.get_list("set-cookie"))


def test_a_readers_session_has_no_form_that_writes(
    client: TestClient[Any], make_token: Any
) -> None:
    source = registered(client, make_token(), "orders")
    sign_in(client, make_token("sources:read", name="reader"))
    pages = ["/ui/sources", f"/ui/sources/{source['id']}", f"/ui/sources/{source['id']}/history"]
    for path in pages:
        html = client.get(path).text
        # Testing a saved connection reads it (sources:read); signing out ends the session.
        assert set(POST_FORM.findall(html)) <= {
            f"/ui/sources/{source['id']}/test",
            "/ui/sign-out",
        }, path
        for writing in ("/edit", "/delete", "/ui/sources/new"):
            assert writing not in html, path
    for path in ("/ui/sources/new", f"/ui/sources/{source['id']}/edit"):
        refused = client.get(path)
        assert refused.status_code == 403
        assert "sources:write" in refused.text
    csrf = csrf_of(client.get("/ui/sources").text)
    refused = client.post(
        f"/ui/sources/{source['id']}/delete", data={"csrf_token": csrf, "version": "1"}
    )
    assert refused.status_code == 403


def test_secrets_are_masked_even_for_a_key_that_may_read_them(
    client: TestClient[Any], make_token: Any
) -> None:
    token = make_token()
    source = registered(client, token, "orders")
    sign_in(client, token)
    html = client.get(f"/ui/sources/{source['id']}").text
    assert "s3cret" not in html
    assert "********" in html
    assert "s3cret" not in client.get(f"/ui/sources/{source['id']}/edit").text
    events = client.get(
        f"/v1/events?source_id={source['id']}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert "source.secrets_read" not in [e["action"] for e in events]


def test_a_form_shows_the_apis_errors_field_for_field(
    client: TestClient[Any], make_token: Any
) -> None:
    token = make_token()
    api = client.post(
        "/v1/sources",
        json={"name": " ", "source_type": "csv", "connection": {"path": "/etc/passwd"}},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    sign_in(client, token)
    csrf = csrf_of(client.get("/ui/sources/new?source_type=csv").text)
    form = {"csrf_token": csrf, "source_type": "csv", "name": " ", "connection.path": "/etc/passwd"}
    answer = client.post("/ui/sources/new", data=form)
    assert answer.status_code == api["status"] == 400
    for error in api["errors"]:
        assert error["field"] in answer.text
        assert error["message"].replace("'", "&#39;") in answer.text


def test_an_edit_at_a_stale_version_is_refused_with_the_current_one(
    client: TestClient[Any], make_token: Any
) -> None:
    token = make_token()
    source = registered(client, token, "orders")
    sign_in(client, token)
    edit = client.get(f"/ui/sources/{source['id']}/edit").text
    changed = client.patch(
        f"/v1/sources/{source['id']}",
        json={"description": "changed elsewhere"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert changed.json()["version"] == 2
    form = {
        "csrf_token": csrf_of(edit),
        "version": "1",
        "name": "orders",
        "description": "mine",
        "tags": "production, finance",
        "connection.host": "db.internal",
        "connection.port": "5432",
        "connection.dbname": "production",
        "connection.user": "tdb_reader",
        "connection.password": "********",
        "connection.table": "orders",
        "connection.schema": "public",
    }
    answer = client.post(f"/ui/sources/{source['id']}/edit", data=form)
    assert answer.status_code == 412
    assert "version 2" in answer.text
    saved = client.post(
        f"/ui/sources/{source['id']}/edit", data={**form, "version": "2"}, follow_redirects=False
    )
    assert saved.status_code == 303
    record = client.get(
        f"/v1/sources/{source['id']}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert (record["description"], record["version"]) == ("mine", 3)
    assert record["connection"]["password"] == "s3cret"  # sent back masked: kept


def test_sign_in_never_sends_to_another_site(client: TestClient[Any], make_token: Any) -> None:
    token = make_token()
    for target in ("//evil.example/ui/", "https://evil.example/", "/ui//evil.example", "/v1/x"):
        form = client.get("/ui/sign-in")
        answer = client.post(
            "/ui/sign-in",
            data={"token": token, "csrf_token": csrf_of(form.text), "next": target},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/ui/sources", target


def test_pages_forbid_other_hosts_frames_and_caching(
    client: TestClient[Any], make_token: Any
) -> None:
    sign_in(client, make_token())
    headers = client.get("/ui/sources").headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"


def test_sign_out_ends_the_session(client: TestClient[Any], make_token: Any) -> None:
    sign_in(client, make_token())
    csrf = csrf_of(client.get("/ui/sources").text)
    answer = client.post("/ui/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert "Max-Age=0" in answer.headers["set-cookie"]
    assert client.get("/ui/sources", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("ui", [True, False])
def test_the_ui_is_off_with_its_setting_and_never_in_the_api_document(
    settings: Settings, ui: bool
) -> None:
    container = build_container(attrs.evolve(settings, ui=ui))
    try:
        with TestClient(create_app(container)) as client:
            status = client.get("/ui/sign-in").status_code
            assert status == (200 if ui else 404)
            paths = client.get("/schema/openapi.json").json()["paths"]
            assert not [p for p in paths if p.startswith("/ui")]
    finally:
        container.shutdown_resources()


def test_a_watch_set_refused_and_stopped_from_the_source_page(
    client: TestClient[Any], make_token: Any
) -> None:
    token = make_token()
    source = registered(client, token, "orders")
    sign_in(client, token)
    page = f"/ui/sources/{source['id']}"
    assert "Not watched" in client.get(page).text
    csrf = csrf_of(client.get(page).text)
    refused = client.post(f"{page}/watch", data={"csrf_token": csrf, "interval_seconds": "5"})
    api = client.put(
        f"/v1/sources/{source['id']}/watch",
        json={"interval_seconds": 5},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == api.status_code == 400
    assert api.json()["errors"][0]["message"] in refused.text
    client.post(f"{page}/watch", data={"csrf_token": csrf, "interval_seconds": "3600"})
    assert "3600 s" in client.get(page).text
    client.post(f"{page}/watch/delete", data={"csrf_token": csrf})
    assert "Not watched" in client.get(page).text


HOOK = "http://127.0.0.1:9/hook"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")


def _hook_form(csrf: str, **fields: Any) -> dict[str, Any]:
    return {"csrf_token": csrf, "url": HOOK, "events": ["webhook.ping"], **fields}


def test_webhook_forms_need_the_sessions_csrf_token(
    client: TestClient[Any], make_token: Any
) -> None:
    token = make_token()
    sign_in(client, token)
    for csrf in ("", "not-the-token"):
        answer = client.post("/ui/webhooks/new", data=_hook_form(csrf), follow_redirects=False)
        assert answer.status_code == 403
        assert "did not come from this site" in answer.text
    listed = client.get("/v1/webhooks", headers={"Authorization": f"Bearer {token}"}).json()
    assert listed == []


def test_a_key_without_webhooks_manage_gets_no_webhook_page_link_or_form(
    client: TestClient[Any], make_token: Any
) -> None:
    admin = {"Authorization": f"Bearer {make_token()}"}
    created = client.post("/v1/webhooks", json={"url": HOOK, "events": ["*"]}, headers=admin)
    hook = created.json()["id"]
    sign_in(client, make_token("sources:read", "sources:write", "audit:read", name="no-hooks"))
    html = client.get("/ui/sources").text
    assert "/ui/webhooks" not in html
    assert 'href="/ui/columns"' in html  # sources:read opens the column search
    for path in ("/ui/webhooks", "/ui/webhooks/new", f"/ui/webhooks/{hook}"):
        refused = client.get(path)
        assert refused.status_code == 403, path
        assert "webhooks:manage" in refused.text
        assert '<form method="post" action="/ui/webhooks' not in refused.text
    csrf = csrf_of(html)
    for path in ("/ui/webhooks/new", f"/ui/webhooks/{hook}/rotate", f"/ui/webhooks/{hook}/delete"):
        assert client.post(path, data=_hook_form(csrf)).status_code == 403, path
    assert client.get(f"/v1/webhooks/{hook}", headers=admin).status_code == 200


def test_a_webhook_secret_is_on_the_create_and_rotate_answers_only(
    client: TestClient[Any], make_token: Any
) -> None:
    sign_in(client, make_token())
    csrf = csrf_of(client.get("/ui/webhooks/new").text)
    created = client.post("/ui/webhooks/new", data=_hook_form(csrf, description="ops"))
    assert created.status_code == 201
    [first] = SECRET.findall(created.text)
    hook = re.search(r'href="/ui/webhooks/([0-9a-f-]{36})"', created.text)
    assert hook
    page = f"/ui/webhooks/{hook.group(1)}"
    rotated = client.post(f"{page}/rotate", data={"csrf_token": csrf, "overlap_seconds": "60"})
    assert rotated.status_code == 200
    [second] = SECRET.findall(rotated.text)
    assert second != first
    for path in ("/ui/webhooks", page, f"{page}/edit", f"{page}/delete"):
        html = client.get(path).text
        assert "whsec_" not in html, path
    refused = client.post(f"{page}/rotate", data={"csrf_token": csrf, "overlap_seconds": "-1"})
    assert refused.status_code == 400
    assert "overlap_seconds" in refused.text
    assert "whsec_" not in refused.text


def test_the_webhook_form_shows_the_apis_errors_field_for_field(
    client: TestClient[Any], make_token: Any
) -> None:
    token = make_token()
    api = client.post(
        "/v1/webhooks",
        json={"url": "ftp://example.com/x", "events": [], "tags": ["Bad Tag!"]},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    sign_in(client, token)
    csrf = csrf_of(client.get("/ui/webhooks/new").text)
    form = {"csrf_token": csrf, "url": "ftp://example.com/x", "tags": "Bad Tag!"}
    answer = client.post("/ui/webhooks/new", data=form)
    assert answer.status_code == api["status"] == 400
    assert {e["field"] for e in api["errors"]} >= {"url", "events"}
    for error in api["errors"]:
        assert error["field"] in answer.text
        assert error["message"].replace("'", "&#39;") in answer.text
    assert 'value="ftp://example.com/x"' in answer.text  # the form comes back as it was sent


def test_a_webhook_pinged_redelivered_updated_and_deleted_through_forms(
    client: TestClient[Any], make_token: Any
) -> None:
    token = make_token()
    api = {"Authorization": f"Bearer {token}"}
    hook = client.post("/v1/webhooks", json={"url": HOOK, "events": ["*"]}, headers=api).json()
    sign_in(client, token)
    page = f"/ui/webhooks/{hook['id']}"
    csrf = csrf_of(client.get(page).text)
    assert (
        client.post(f"{page}/ping", data={"csrf_token": csrf}, follow_redirects=False).status_code
        == 303
    )
    listed = client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=api).json()
    [delivery] = [d for d in listed if d["type"] == "webhook.ping"]
    html = client.get(page).text
    assert f"{page}/deliveries/{delivery['id']}/redeliver" in html
    again = client.post(
        f"{page}/deliveries/{delivery['id']}/redeliver",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert again.status_code == 303
    assert client.get(f"{page}?state=nope").status_code == 400
    for _ in range(50):
        client.post(f"/v1/webhooks/{hook['id']}/ping", headers=api)
    first = client.get(page).text
    assert first.count("/redeliver") == 50
    following = re.search(r'href="([^"]+)" rel="next"', first)
    assert following
    second = client.get(following.group(1).replace("&amp;", "&")).text
    total = client.get(f"/v1/webhooks/{hook['id']}/deliveries?limit=1000", headers=api).json()
    assert len(total) > 50
    assert second.count("/redeliver") == len(total) - 50
    assert "No delivery in state" in client.get(f"{page}?state=succeeded").text
    edit = _hook_form(csrf, events=["source.registered"], tags="finance", description="edited")
    saved = client.post(f"{page}/edit", data=edit, follow_redirects=False)
    assert saved.status_code == 303
    record = client.get(f"/v1/webhooks/{hook['id']}", headers=api).json()
    assert (record["events"], record["tags"], record["enabled"]) == (
        ["source.registered"],
        ["finance"],
        False,  # the box was not ticked: the form disables it
    )
    gone = client.post(f"{page}/delete", data={"csrf_token": csrf})
    assert gone.status_code == 200
    assert client.get(f"/v1/webhooks/{hook['id']}", headers=api).status_code == 404
    assert client.get(page).status_code == 404


def test_the_column_search_asks_for_a_name_and_refuses_what_the_api_refuses(
    client: TestClient[Any], make_token: Any
) -> None:
    token = make_token("sources:read", name="reader")
    sign_in(client, token)
    assert "Give a column name" in client.get("/ui/columns").text
    assert "No column matches" in client.get("/ui/columns?name=cust*").text
    long = "x" * 201
    api = client.get(f"/v1/columns?name={long}", headers={"Authorization": f"Bearer {token}"})
    page = client.get(f"/ui/columns?name={long}")
    assert page.status_code == api.status_code == 400
    # The API's parameter check answers first there; here the domain's, which names the field.
    assert "<code>name</code> must be 1 to 200 characters long" in page.text
    assert client.get("/ui/columns?name=a&after=nope").status_code == 400


TOKEN = re.compile(r"tdbk_[0-9a-f]+_[A-Za-z0-9_-]+")


def test_key_forms_need_csrf_and_keys_manage(client: TestClient[Any], make_token: Any) -> None:
    token = make_token()
    sign_in(client, token)
    form = {"name": "forged", "expires_in_days": "3"}
    for csrf in ("", "not-the-token"):
        answer = client.post("/ui/keys/new", data={**form, "csrf_token": csrf})
        assert answer.status_code == 403
        assert "did not come from this site" in answer.text
    names = [
        k["name"]
        for k in client.get("/v1/keys", headers={"Authorization": f"Bearer {token}"}).json()
    ]
    assert "forged" not in names
    sign_in(client, make_token("sources:read", "webhooks:manage", name="no-keys"))
    html = client.get("/ui/sources").text
    assert "/ui/keys" not in html
    assert 'href="/ui/webhooks"' in html
    refused = client.get("/ui/keys")
    assert refused.status_code == 403
    assert "keys:manage" in refused.text
    answer = client.post("/ui/keys/new", data={**form, "csrf_token": csrf_of(html)})
    assert answer.status_code == 403


def test_a_token_is_on_the_create_and_rotate_answers_only(
    client: TestClient[Any], make_token: Any
) -> None:
    admin = make_token()
    sign_in(client, admin)
    csrf = csrf_of(client.get("/ui/keys").text)
    form = {"csrf_token": csrf, "name": "ci", "scopes": ["sources:read"], "expires_in_days": "30"}
    created = client.post("/ui/keys/new", data=form)
    assert created.status_code == 201
    [token] = TOKEN.findall(created.text)
    key_id = token.split("_")[1]
    listed = client.get("/ui/keys").text
    assert f"tdbk_{key_id}" in listed
    assert not TOKEN.search(listed)
    assert token.rsplit("_", 1)[1] not in listed
    rotated = client.post(
        f"/ui/keys/{key_id}/rotate", data={"csrf_token": csrf, "overlap_seconds": "0"}
    )
    assert rotated.status_code == 200
    [new] = TOKEN.findall(rotated.text)
    assert new != token
    for page in ("/ui/keys", f"/ui/keys/{new.split('_')[1]}/revoke"):
        assert not TOKEN.search(client.get(page).text), page
    gone = client.post(
        f"/ui/keys/{new.split('_')[1]}/revoke", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert gone.status_code == 303
    api = client.get(
        f"/v1/keys/{new.split('_')[1]}", headers={"Authorization": f"Bearer {admin}"}
    ).json()
    assert api["revoked_at"] is not None


def test_the_key_form_shows_the_apis_errors_field_for_field(
    client: TestClient[Any], make_token: Any
) -> None:
    token = make_token()
    api = client.post(
        "/v1/keys",
        json={"name": " ", "scopes": ["nope"], "expires_in_days": 0},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    sign_in(client, token)
    csrf = csrf_of(client.get("/ui/keys").text)
    form = {"csrf_token": csrf, "name": " ", "scopes": ["nope"], "expires_in_days": "0"}
    answer = client.post("/ui/keys/new", data=form)
    assert answer.status_code == api["status"] == 400
    for error in api["errors"]:
        assert error["field"] in answer.text
        assert error["message"].replace("'", "&#39;") in answer.text
