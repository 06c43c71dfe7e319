"""The page of API keys: the keys, and the forms that create (with a lifetime), revoke and
rotate one, for a key holding `keys:manage`. Each form is decoded as the API's body
(`entrypoints/key_requests.py`) and judged by the same use case.

A token is shown once: on the page that answers the create or the rotate form (the store keeps
only its hash)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from application.keys import CreateApiKey, IssuedKey
from domain.errors import DomainError
from domain.keys import ROTATION_OVERLAP_DEFAULT, Scope
from entrypoints.key_requests import create_key_fields, rotation_overlap
from entrypoints.runtime.outcomes import outcome_of
from entrypoints.ui.pages import UI_PATH, FormErrors, UiRequest, page, ui_of

KEYS = f"{UI_PATH}/keys"
MANAGE = {"scope": CreateApiKey.required_scope}


def _number(text: str) -> object:
    # Text that is not a whole number goes to the decoder as it is, which says so; empty is
    # "not given".
    text = text.strip()
    return int(text) if text.isdigit() else (text or None)


async def _keys_page(
    request: UiRequest,
    form: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Template:
    keys = await ui_of(request).use_case("list_api_keys")(request.user)
    return page(
        request,
        "keys.html",
        status=status,
        keys=keys,
        now=datetime.now(UTC),
        all_scopes=[s.value for s in Scope],
        form=form or {"name": "", "scopes": [], "expires_in_days": ""},
        errors=errors,
        overlap_default=int(ROTATION_OVERLAP_DEFAULT.total_seconds()),
    )


def _issued(request: UiRequest, issued: IssuedKey, rotated_from: str | None) -> Template:
    return page(
        request,
        "key_token.html",
        status=201 if rotated_from is None else 200,
        key=issued.key,
        token=issued.token,
        rotated_from=rotated_from,
    )


@get("/keys", opt=MANAGE, name="ui-keys")
async def keys_page(request: UiRequest) -> Template:
    return await _keys_page(request)


@post("/keys/new", opt=MANAGE, status_code=201)
async def create_key(request: UiRequest) -> Template:
    form = await request.form()
    body = {
        "name": form.get("name", ""),
        "scopes": list(form.getall("scopes", [])),
        "expires_in_days": _number(str(form.get("expires_in_days", ""))),
    }
    try:
        name, scopes, days = create_key_fields(body)
        issued = await ui_of(request).use_case("create_api_key")(name, scopes, request.user, days)
    except DomainError as exc:
        errors = FormErrors(outcome_of(exc))
        shown = {**body, "expires_in_days": form.get("expires_in_days", "")}
        return await _keys_page(request, shown, errors, errors.outcome.status)
    return _issued(request, issued, None)


@get("/keys/{key_id:str}/revoke", opt=MANAGE)
async def confirm_revoke(request: UiRequest, key_id: FromPath[str]) -> Template:
    key = await ui_of(request).use_case("get_api_key")(request.user, key_id)
    return page(request, "key_revoke.html", key=key)


@post("/keys/{key_id:str}/revoke", opt=MANAGE, status_code=303)
async def revoke_key(request: UiRequest, key_id: FromPath[str]) -> Redirect:
    await ui_of(request).use_case("revoke_api_key")(key_id, request.user)
    return Redirect(KEYS, status_code=303)


@post("/keys/{key_id:str}/rotate", opt=MANAGE, status_code=200)
async def rotate_key(request: UiRequest, key_id: FromPath[str]) -> Template:
    form = await request.form()
    overlap = rotation_overlap({"overlap_seconds": _number(str(form.get("overlap_seconds", "")))})
    issued = await ui_of(request).use_case("rotate_api_key")(
        key_id, request.user, timedelta(seconds=overlap)
    )
    return _issued(request, issued, key_id)


HANDLERS = [keys_page, create_key, confirm_revoke, revoke_key, rotate_key]
