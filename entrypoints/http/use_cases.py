"""The use cases handlers call, made from the container (the one place that wires them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import Any

from litestar import Request

from application.columns import FindColumns
from application.connectors import ListConnectors
from application.deliveries import ListDeliveries, Redeliver
from application.events import ListEvents
from application.history import GetSchemaHistory, InspectSchema
from application.keys import CreateApiKey, GetApiKey, ListApiKeys, RevokeApiKey, RotateApiKey
from application.sources import (
    CheckNewConnection,
    CheckSourceConnection,
    DeleteSource,
    GetSource,
    ListSources,
    RegisterSource,
    StreamSources,
    UpdateSource,
)
from application.webhooks import (
    CreateWebhook,
    DeleteWebhook,
    GetWebhook,
    ListWebhooks,
    PingWebhook,
    RotateWebhookSecret,
    UpdateWebhook,
)
from entrypoints.container import Container


class UseCases:
    """Each use case an app's handlers call, made at its first request and kept.

    A use case holds nothing of a request's own (only the container's singletons), so one per
    app serves every request. Handlers take it from here rather than through Litestar's
    dependency injection, which costs each request a resolution step per handler.
    """

    def __init__(self, container: Container) -> None:
        self._container = container

    @cached_property
    def register_source(self) -> RegisterSource:
        return self._container.register_source()

    @cached_property
    def list_sources(self) -> ListSources:
        return self._container.list_sources()

    @cached_property
    def stream_sources(self) -> StreamSources:
        return self._container.stream_sources()

    @cached_property
    def get_source(self) -> GetSource:
        return self._container.get_source()

    @cached_property
    def inspect_schema(self) -> InspectSchema:
        return self._container.inspect_schema()

    @cached_property
    def schema_history(self) -> GetSchemaHistory:
        return self._container.schema_history()

    @cached_property
    def delete_source(self) -> DeleteSource:
        return self._container.delete_source()

    @cached_property
    def update_source(self) -> UpdateSource:
        return self._container.update_source()

    @cached_property
    def check_source_connection(self) -> CheckSourceConnection:
        return self._container.check_source_connection()

    @cached_property
    def check_new_connection(self) -> CheckNewConnection:
        return self._container.check_new_connection()

    @cached_property
    def list_events(self) -> ListEvents:
        return self._container.list_events()

    @cached_property
    def find_columns(self) -> FindColumns:
        return self._container.find_columns()

    @cached_property
    def list_connectors(self) -> ListConnectors:
        return self._container.list_connectors()

    @cached_property
    def check_readiness(self) -> Callable[[], Awaitable[None]]:
        return self._container.check_readiness()

    @cached_property
    def create_api_key(self) -> CreateApiKey:
        return self._container.create_api_key()

    @cached_property
    def list_api_keys(self) -> ListApiKeys:
        return self._container.list_api_keys()

    @cached_property
    def get_api_key(self) -> GetApiKey:
        return self._container.get_api_key()

    @cached_property
    def revoke_api_key(self) -> RevokeApiKey:
        return self._container.revoke_api_key()

    @cached_property
    def rotate_api_key(self) -> RotateApiKey:
        return self._container.rotate_api_key()

    @cached_property
    def create_webhook(self) -> CreateWebhook:
        return self._container.create_webhook()

    @cached_property
    def list_webhooks(self) -> ListWebhooks:
        return self._container.list_webhooks()

    @cached_property
    def get_webhook(self) -> GetWebhook:
        return self._container.get_webhook()

    @cached_property
    def update_webhook(self) -> UpdateWebhook:
        return self._container.update_webhook()

    @cached_property
    def delete_webhook(self) -> DeleteWebhook:
        return self._container.delete_webhook()

    @cached_property
    def rotate_webhook_secret(self) -> RotateWebhookSecret:
        return self._container.rotate_webhook_secret()

    @cached_property
    def ping_webhook(self) -> PingWebhook:
        return self._container.ping_webhook()

    @cached_property
    def list_deliveries(self) -> ListDeliveries:
        return self._container.list_deliveries()

    @cached_property
    def redeliver(self) -> Redeliver:
        return self._container.redeliver()


def use_cases(request: Request[Any, Any, Any]) -> UseCases:
    """The use cases of the app serving this request."""
    found: UseCases = request.app.state.use_cases
    return found
