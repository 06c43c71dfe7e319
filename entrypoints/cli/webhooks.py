"""`tdb webhooks ...`: webhook endpoints, their secrets, pings and deliveries, over the same use
cases as the HTTP API. The CLI writes to the store; a running `tdb serve` sends."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import click
from msgspec import to_builtins

from application.deliveries import ListDeliveriesQuery, RedeliverCommand
from application.webhooks import (
    CreateWebhookCommand,
    ListWebhooksQuery,
    RotateSecretCommand,
    UpdateWebhookCommand,
    WebhookQuery,
)
from domain.errors import DeliveryNotFound, InvalidInput, WebhookNotFound
from domain.keys import Principal
from domain.webhooks import DeliveryState, Endpoint, event_types
from entrypoints.commands import out, out_json, printable, store_options, with_container
from entrypoints.container import Container
from entrypoints.operator import OPERATOR
from entrypoints.webhook_requests import WebhookCreateRequest, decode_webhook_patch
from entrypoints.webhook_shapes import DeliveryOut, WebhookOut

_DURATION = re.compile(r"([0-9]+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """`90`, `90s`, `15m`, `24h`, `7d` as seconds; `InvalidInput` on `overlap` otherwise."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise InvalidInput.single("overlap", "must be a duration such as 3600, 90m, 24h or 7d")
    return int(found.group(1)) * _UNITS[found.group(2)]


async def _actor(container: Container, args: SimpleNamespace) -> Principal:
    token = getattr(args, "token", None) or os.environ.get("TDB_TOKEN")
    if token:
        return await container.authenticate()(token)
    return OPERATOR


def _id(raw: str, missing: type[Exception]) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise missing(raw) from None


def _print_endpoint(endpoint: Endpoint, as_json: bool, secret: str | None = None) -> None:
    row = to_builtins(WebhookOut.of(endpoint))
    if as_json:
        out_json({**row, "secret": secret} if secret is not None else row)
        return
    for field in ("id", "url", "events", "enabled", "disabled_reason", "created_at"):
        value = row[field]
        shown = ",".join(value) if isinstance(value, list) else value
        out(printable(f"{field}: {shown}"))
    if secret is not None:
        out("The signing secret is shown once; store it now:")
        out(secret)


async def webhooks_create(container: Container, args: SimpleNamespace) -> None:
    body: dict[str, Any] = {"url": args.url, "events": list(args.event)}
    if args.breaking_only:
        body["breaking_only"] = True
    if args.description is not None:
        body["description"] = args.description
    fields = WebhookCreateRequest.decode(body).fields
    created = await container.create_webhook()(
        CreateWebhookCommand(await _actor(container, args), fields)
    )
    _print_endpoint(created.endpoint, args.json, created.secret)


async def webhooks_list(container: Container, args: SimpleNamespace) -> None:
    endpoints = await container.list_webhooks()(ListWebhooksQuery(await _actor(container, args)))
    if args.json:
        out_json([to_builtins(WebhookOut.of(e)) for e in endpoints])
        return
    out("ID  ENABLED  EVENTS  URL")
    for e in endpoints:
        state = "yes" if e.enabled else f"no ({e.disabled_reason or 'by hand'})"
        out(printable(f"{e.id}  {state}  {','.join(e.events)}  {e.url}"))


async def webhooks_show(container: Container, args: SimpleNamespace) -> None:
    query = WebhookQuery(await _actor(container, args), _id(args.id, WebhookNotFound))
    _print_endpoint(await container.get_webhook()(query), args.json)


def _read_json(file: str) -> Any:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput.single("file", "is not valid UTF-8 JSON") from None


async def webhooks_update(container: Container, args: SimpleNamespace) -> None:
    changes = decode_webhook_patch(_read_json(args.file))
    command = UpdateWebhookCommand(
        await _actor(container, args), _id(args.id, WebhookNotFound), changes
    )
    _print_endpoint(await container.update_webhook()(command), args.json)


async def webhooks_delete(container: Container, args: SimpleNamespace) -> None:
    endpoint_id = _id(args.id, WebhookNotFound)
    await container.delete_webhook()(WebhookQuery(await _actor(container, args), endpoint_id))
    if args.json:
        out_json({"id": str(endpoint_id), "deleted": True})
    else:
        out(f"Deleted webhook {endpoint_id}")


async def webhooks_rotate(container: Container, args: SimpleNamespace) -> None:
    command = RotateSecretCommand(
        await _actor(container, args),
        _id(args.id, WebhookNotFound),
        parse_duration(args.overlap),
    )
    secret = await container.rotate_webhook_secret()(command)
    if args.json:
        out_json({"secret": secret})
        return
    out("The new signing secret is shown once; store it now:")
    out(secret)


async def webhooks_ping(container: Container, args: SimpleNamespace) -> None:
    query = WebhookQuery(await _actor(container, args), _id(args.id, WebhookNotFound))
    delivery = await container.ping_webhook()(query)
    if args.json:
        out_json({"delivery_id": str(delivery.id)})
    else:
        out(f"Ping queued as delivery {delivery.id}")


async def webhooks_deliveries(container: Container, args: SimpleNamespace) -> None:
    state = None if args.state is None else DeliveryState(args.state)
    query = ListDeliveriesQuery(
        await _actor(container, args), _id(args.id, WebhookNotFound), state, args.limit
    )
    page = await container.list_deliveries()(query)
    rows = [to_builtins(DeliveryOut.of(d)) for d in page.deliveries]
    if args.json:
        out_json(rows)
        return
    out("ID  TYPE  STATE  ATTEMPTS  NEXT_ATTEMPT_AT")
    for row in rows:
        out(
            f"{row['id']}  {row['type']}  {row['state']}  {len(row['attempts'])}"
            f"  {row['next_attempt_at'] or '-'}"
        )


async def webhooks_redeliver(container: Container, args: SimpleNamespace) -> None:
    command = RedeliverCommand(
        await _actor(container, args),
        _id(args.id, WebhookNotFound),
        _id(args.delivery_id, DeliveryNotFound),
    )
    await container.redeliver()(command)
    if args.json:
        out_json({"delivery_id": args.delivery_id, "state": "pending"})
    else:
        out(f"Delivery {args.delivery_id} is pending again")


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
_token: Decorator = click.option(
    "--token", envvar="TDB_TOKEN", help="act as this API key (TDB_TOKEN); default: the operator"
)


def _add(
    group: click.Group,
    name: str,
    handler: Callable[[Container, SimpleNamespace], Awaitable[None]],
    help_text: str,
    *options: Decorator,
) -> None:
    command: Callable[..., Any] = with_container(upgrade=True)(handler)
    for option in reversed((_token, *options)):
        command = option(command)
    group.command(name, help=help_text)(store_options(command))


def webhooks_group() -> click.Group:
    """`tdb webhooks`: every command of the subject."""
    group = click.Group("webhooks", help="manage webhook endpoints and their deliveries")
    _id_arg = click.argument("id")
    _add(
        group,
        "create",
        webhooks_create,
        "create an endpoint; prints its signing secret once, as the last line",
        click.option("--url", required=True),
        click.option(
            "--event", multiple=True, required=True, type=click.Choice(list(event_types()))
        ),
        click.option("--breaking-only", is_flag=True, help="only breaking schema changes"),
        click.option("--description"),
    )
    _add(group, "list", webhooks_list, "list endpoints")
    _add(group, "show", webhooks_show, "show one endpoint (never its secret)", _id_arg)
    _add(
        group,
        "update",
        webhooks_update,
        "apply the JSON Merge Patch in PATCH.json ('-': stdin) to an endpoint",
        _id_arg,
        click.argument("file", metavar="PATCH.json"),
    )
    _add(group, "delete", webhooks_delete, "delete an endpoint and its deliveries", _id_arg)
    _add(
        group,
        "rotate",
        webhooks_rotate,
        "rotate the signing secret; prints the new one once, as the last line",
        _id_arg,
        click.option("--overlap", default="24h", help="old secret kept signing (default 24h)"),
    )
    _add(group, "ping", webhooks_ping, "queue one webhook.ping delivery", _id_arg)
    _add(
        group,
        "deliveries",
        webhooks_deliveries,
        "list an endpoint's deliveries, newest first",
        _id_arg,
        click.option("--state", type=click.Choice([s.value for s in DeliveryState])),
        click.option("--limit", type=click.IntRange(1, 1000), default=100),
    )
    _add(
        group,
        "redeliver",
        webhooks_redeliver,
        "make a delivery pending again, due now",
        _id_arg,
        click.argument("delivery_id"),
    )
    return group
