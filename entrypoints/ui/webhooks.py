"""The pages of webhooks: the endpoints, one endpoint with its deliveries and their attempts,
and the forms that create, update, delete, rotate the secret of, ping an endpoint and redeliver
a delivery. Every page needs `webhooks:manage` (the API's scope for all of it); each form is
decoded as the API's body (`entrypoints/webhook_requests.py`) and judged by the same use case.

A secret is shown once: on the page that answers the create form or the rotate form, never
again (the use cases keep it encrypted; no other page reads it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template

from application.deliveries import ListDeliveriesQuery, RedeliverCommand
from application.webhooks import (
    CreateWebhook,
    CreateWebhookCommand,
    ListWebhooksQuery,
    RotateSecretCommand,
    UpdateWebhookCommand,
    WebhookQuery,
)
from domain.errors import DeliveryNotFound, DomainError, InvalidInput, WebhookNotFound
from domain.webhooks import OVERLAP_DEFAULT, DeliveryState, Endpoint, event_types
from entrypoints.cursors import decode_delivery_cursor, encode_delivery_cursor
from entrypoints.runtime.outcomes import outcome_of
from entrypoints.ui import forms
from entrypoints.ui.pages import UI_PATH, FormErrors, UiRequest, page, ui_of
from entrypoints.ui.paging import PAGE_SIZE
from entrypoints.webhook_requests import RotateRequest, WebhookCreateRequest, decode_webhook_patch

WEBHOOKS = f"{UI_PATH}/webhooks"
MANAGE = {"scope": CreateWebhook.required_scope}


def _id(raw: str, missing: type[WebhookNotFound | DeliveryNotFound]) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise missing(raw) from None


async def _endpoint(request: UiRequest, webhook_id: str) -> Endpoint:
    query = WebhookQuery(request.user, _id(webhook_id, WebhookNotFound))
    found: Endpoint = await ui_of(request).use_case("get_webhook")(query)
    return found


def _body(form: FormMultiDict, with_enabled: bool) -> dict[str, Any]:
    """The API's JSON body of the endpoint form: the events as the boxes ticked, source ids and
    tags one a line or separated by commas."""
    body: dict[str, Any] = {
        "url": form.get("url", ""),
        "events": list(form.getall("events", [])),
        "breaking_only": form.get("breaking_only") == "on",
        "source_ids": forms.tags(form.get("source_ids", "")),
        "tags": forms.tags(form.get("tags", "")),
        "description": form.get("description", ""),
    }
    if with_enabled:
        body["enabled"] = form.get("enabled") == "on"
    return body


def _form_of(endpoint: Endpoint) -> dict[str, Any]:
    """An endpoint as its update form shows it."""
    return {
        "url": endpoint.url,
        "events": list(endpoint.events),
        "breaking_only": endpoint.breaking_only,
        "source_ids": ", ".join(str(i) for i in endpoint.source_ids),
        "tags": ", ".join(endpoint.tags),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
    }


def _shown(body: Mapping[str, Any]) -> dict[str, Any]:
    """A sent form, shown again as it was sent."""
    return {
        **body,
        "source_ids": ", ".join(body["source_ids"]),
        "tags": ", ".join(body["tags"]),
    }


def _form_page(
    request: UiRequest,
    form: Mapping[str, Any],
    endpoint: Endpoint | None,
    status: int = 200,
    errors: FormErrors | None = None,
) -> Template:
    return page(
        request,
        "webhook_form.html",
        status=status,
        form=form,
        endpoint=endpoint,
        errors=errors,
        event_types=event_types(),
    )


@get("/webhooks", opt=MANAGE, name="ui-webhooks")
async def webhooks_page(request: UiRequest) -> Template:
    endpoints = await ui_of(request).use_case("list_webhooks")(ListWebhooksQuery(request.user))
    return page(request, "webhooks.html", endpoints=endpoints)


@get("/webhooks/new", opt=MANAGE)
async def new_webhook(request: UiRequest) -> Template:
    return _form_page(request, {"url": "", "events": [], "source_ids": "", "tags": ""}, None)


@post("/webhooks/new", opt=MANAGE, status_code=201)
async def create_webhook(request: UiRequest) -> Template:
    body = _body(await request.form(), with_enabled=False)
    try:
        fields = WebhookCreateRequest.decode(body).fields
        created = await ui_of(request).use_case("create_webhook")(
            CreateWebhookCommand(request.user, fields)
        )
    except DomainError as exc:
        errors = FormErrors(outcome_of(exc))
        return _form_page(request, _shown(body), None, errors.outcome.status, errors)
    return page(
        request,
        "webhook_secret.html",
        status=201,
        endpoint=created.endpoint,
        secret=created.secret,
        created=True,
    )


@get("/webhooks/{webhook_id:str}", opt=MANAGE, name="ui-webhook")
async def webhook_page(
    request: UiRequest,
    webhook_id: FromPath[str],
    # `state` is a name Litestar keeps for its own: the query's `state` comes in under another.
    state_filter: Annotated[str, QueryParameter(name="state")] = "",
    after: FromQuery[str] = "",
) -> Template:
    endpoint, state = await _endpoint(request, webhook_id), state_filter
    if state and state not in {s.value for s in DeliveryState}:
        known = ", ".join(s.value for s in DeliveryState)
        raise InvalidInput.single("state", f"must be one of {known}")
    query = ListDeliveriesQuery(
        request.user,
        endpoint.id,
        DeliveryState(state) if state else None,
        PAGE_SIZE,
        decode_delivery_cursor(after) if after else None,
    )
    deliveries = await ui_of(request).use_case("list_deliveries")(query)
    here = f"{WEBHOOKS}/{endpoint.id}"
    following = None
    if deliveries.next_key is not None:
        kept = [("state", state)] if state else []
        following = (
            f"{here}?{urlencode([*kept, ('after', encode_delivery_cursor(deliveries.next_key))])}"
        )
    return page(
        request,
        "webhook.html",
        endpoint=endpoint,
        deliveries=deliveries.deliveries,
        states=[s.value for s in DeliveryState],
        state=state,
        next_page=following,
        first_page=f"{here}?{urlencode([('state', state)])}" if after else None,
        overlap_default=OVERLAP_DEFAULT,
    )


@get("/webhooks/{webhook_id:str}/edit", opt=MANAGE)
async def edit_webhook(request: UiRequest, webhook_id: FromPath[str]) -> Template:
    endpoint = await _endpoint(request, webhook_id)
    return _form_page(request, _form_of(endpoint), endpoint)


@post("/webhooks/{webhook_id:str}/edit", opt=MANAGE, status_code=303)
async def update_webhook(request: UiRequest, webhook_id: FromPath[str]) -> Template | Redirect:
    endpoint = await _endpoint(request, webhook_id)
    body = _body(await request.form(), with_enabled=True)
    try:
        changes = decode_webhook_patch(body)
        await ui_of(request).use_case("update_webhook")(
            UpdateWebhookCommand(request.user, endpoint.id, changes)
        )
    except DomainError as exc:
        errors = FormErrors(outcome_of(exc))
        return _form_page(request, _shown(body), endpoint, errors.outcome.status, errors)
    return Redirect(f"{WEBHOOKS}/{endpoint.id}", status_code=303)


@get("/webhooks/{webhook_id:str}/delete", opt=MANAGE)
async def confirm_delete(request: UiRequest, webhook_id: FromPath[str]) -> Template:
    endpoint = await _endpoint(request, webhook_id)
    return page(request, "webhook_delete.html", endpoint=endpoint, deleted=False)


@post("/webhooks/{webhook_id:str}/delete", opt=MANAGE, status_code=200)
async def delete_webhook(request: UiRequest, webhook_id: FromPath[str]) -> Template:
    endpoint = await _endpoint(request, webhook_id)
    await ui_of(request).use_case("delete_webhook")(WebhookQuery(request.user, endpoint.id))
    return page(request, "webhook_delete.html", endpoint=endpoint, deleted=True)


def _overlap(text: str) -> object:
    # Text that is not a whole number goes to the decoder as it is, which says so.
    return int(text) if text.strip().isdigit() else (text or None)


@post("/webhooks/{webhook_id:str}/rotate", opt=MANAGE, status_code=200)
async def rotate_secret(request: UiRequest, webhook_id: FromPath[str]) -> Template:
    endpoint = await _endpoint(request, webhook_id)
    form = await request.form()
    overlap = RotateRequest.decode(
        {"overlap_seconds": _overlap(str(form.get("overlap_seconds", "")))}
    )
    secret = await ui_of(request).use_case("rotate_webhook_secret")(
        RotateSecretCommand(request.user, endpoint.id, overlap.overlap_seconds)
    )
    return page(request, "webhook_secret.html", endpoint=endpoint, secret=secret, created=False)


@post("/webhooks/{webhook_id:str}/ping", opt=MANAGE, status_code=303)
async def ping(request: UiRequest, webhook_id: FromPath[str]) -> Redirect:
    endpoint = await _endpoint(request, webhook_id)
    await ui_of(request).use_case("ping_webhook")(WebhookQuery(request.user, endpoint.id))
    return Redirect(f"{WEBHOOKS}/{endpoint.id}", status_code=303)


@post(
    "/webhooks/{webhook_id:str}/deliveries/{delivery_id:str}/redeliver", opt=MANAGE, status_code=303
)
async def redeliver(
    request: UiRequest, webhook_id: FromPath[str], delivery_id: FromPath[str]
) -> Redirect:
    endpoint = await _endpoint(request, webhook_id)
    command = RedeliverCommand(request.user, endpoint.id, _id(delivery_id, DeliveryNotFound))
    await ui_of(request).use_case("redeliver")(command)
    return Redirect(f"{WEBHOOKS}/{endpoint.id}", status_code=303)


HANDLERS = [
    webhooks_page,
    new_webhook,
    create_webhook,
    webhook_page,
    edit_webhook,
    update_webhook,
    confirm_delete,
    delete_webhook,
    rotate_secret,
    ping,
    redeliver,
]
