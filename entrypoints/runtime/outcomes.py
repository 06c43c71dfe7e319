"""One table from domain errors to outcomes: what every entrypoint tells a client about a refused
operation. The HTTP API sends an outcome as problem+json, the CLI as a message or a JSON object
and an exit status; a new entrypoint presents the same outcome rather than mapping errors again.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

import attrs

from domain.errors import (
    ApiKeyNotFound,
    AuthenticationFailed,
    BackendUnavailable,
    DeliveryNotFound,
    DomainError,
    DuplicateKeyName,
    DuplicateSourceName,
    HostNotAllowed,
    InvalidConnection,
    InvalidInput,
    KeyNotRotatable,
    PermissionDenied,
    SecretUnreadable,
    SourceNotFound,
    StoreUnavailable,
    UnknownSourceType,
    VerificationFailed,
    VersionMismatch,
    WatchNotFound,
    WebhookNotFound,
)
from entrypoints.presenters import FieldProblem, Problem

PROBLEM_TYPE = "urn:tdb:problem:"


def problem_type(slug: str) -> str:
    """The problem `type` URI of a slug: `urn:tdb:problem:source-not-found`."""
    return PROBLEM_TYPE + slug


class Exit(enum.IntEnum):
    """The `tdb` command's exit statuses, one per kind of failure (docs/cli.md lists them)."""

    OK = 0
    INVALID = 1  # invalid input: a bad field, an unknown source_type, a bad file
    USAGE = 2  # a usage error or a bad setting (`inspect-all`: a breaking change was recorded)
    NOT_STARTED = 3  # `serve` could not start
    NOT_FOUND = 4  # no source (or API key) has this id
    CONFLICT = 5  # a name taken, a version that If-Match does not name
    BACKEND = 6  # the source's backend did not answer (a failed test or --verify included)
    STORE = 7  # the registry's own store cannot be reached
    DENIED = 8  # a token that is not valid, or lacks the scope
    SECRET = 9  # a stored secret cannot be decrypted with the configured key


@attrs.frozen
class Outcome:
    """How a refused operation ends, for every entrypoint: the problem document's fields (RFC 9457,
    `type` from `slug`, `title` from `status`), what the HTTP API adds as headers (`retry_after`),
    and the CLI's exit status. `detail` is safe to show to any client."""

    slug: str
    status: int
    exit_status: Exit
    detail: str = ""
    reason: str | None = None
    errors: tuple[tuple[str, str], ...] | None = None
    available_types: tuple[str, ...] | None = None
    required_scope: str | None = None
    current_version: int | None = None
    retry_after: int | None = None

    @property
    def type(self) -> str:
        return problem_type(self.slug)

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase

    def problem(self, request_id: str | None = None) -> Problem:
        """The problem document (the HTTP API's body; the CLI's `--json` error)."""
        return Problem(
            type=self.type,
            title=self.title,
            status=self.status,
            detail=self.detail,
            reason=self.reason,
            errors=None if self.errors is None else [FieldProblem(f, m) for f, m in self.errors],
            available_types=None if self.available_types is None else list(self.available_types),
            required_scope=self.required_scope,
            current_version=self.current_version,
            request_id=request_id,
        )


E = TypeVar("E", bound=DomainError)
_TABLE: dict[type[DomainError], Callable[[Any], Outcome]] = {}


def _outcome(*kinds: type[E]) -> Callable[[Callable[[E], Outcome]], Callable[[E], Outcome]]:
    def register(make: Callable[[E], Outcome]) -> Callable[[E], Outcome]:
        for kind in kinds:
            _TABLE[kind] = make
        return make

    return register


def outcome_of(exc: DomainError) -> Outcome:
    """The outcome of a domain error: that of its class, or of the nearest class above it that
    has one (`DomainError` itself has none: every error says what it means)."""
    for kind in type(exc).__mro__:
        make = _TABLE.get(kind)
        if make is not None:
            return make(exc)
    raise LookupError(f"no outcome for {type(exc).__name__}: add one to {__name__}")


def kinds() -> frozenset[type[DomainError]]:
    """The domain errors the table names."""
    return frozenset(_TABLE)


@_outcome(InvalidInput, InvalidConnection, HostNotAllowed)
def _invalid_input(exc: InvalidInput) -> Outcome:
    errors = tuple((e.field, e.message) for e in exc.errors)
    return Outcome(
        "invalid-input", 400, Exit.INVALID, "The request has invalid fields.", errors=errors
    )


@_outcome(UnknownSourceType)
def _unknown_type(exc: UnknownSourceType) -> Outcome:
    available = exc.available
    detail = f"source_type {exc.source_type!r} is not registered; available: {', '.join(available)}"
    return Outcome("unknown-source-type", 400, Exit.INVALID, detail, available_types=available)


@_outcome(SourceNotFound)
def _not_found(exc: SourceNotFound) -> Outcome:
    return Outcome("source-not-found", 404, Exit.NOT_FOUND, "No source has this id.")


@_outcome(WatchNotFound)
def _watch_not_found(exc: WatchNotFound) -> Outcome:
    return Outcome("watch-not-found", 404, Exit.NOT_FOUND, "The source has no watch.")


@_outcome(ApiKeyNotFound)
def _key_not_found(exc: ApiKeyNotFound) -> Outcome:
    return Outcome("api-key-not-found", 404, Exit.NOT_FOUND, "No API key has this id.")


@_outcome(DuplicateSourceName)
def _duplicate(exc: DuplicateSourceName) -> Outcome:
    detail = f"A source named {exc.name!r} already exists."
    return Outcome("duplicate-source-name", 409, Exit.CONFLICT, detail)


@_outcome(DuplicateKeyName)
def _duplicate_key(exc: DuplicateKeyName) -> Outcome:
    detail = f"An active API key is already named {exc.name!r}."
    return Outcome("duplicate-key-name", 409, Exit.CONFLICT, detail)


@_outcome(KeyNotRotatable)
def _key_not_rotatable(exc: KeyNotRotatable) -> Outcome:
    detail = f"This API key cannot be rotated: it is {exc.why}."
    return Outcome("key-not-rotatable", 409, Exit.CONFLICT, detail)


@_outcome(VersionMismatch)
def _version_mismatch(exc: VersionMismatch) -> Outcome:
    detail = f"The source is at version {exc.current_version}, not one that If-Match names."
    return Outcome(
        "version-mismatch", 412, Exit.CONFLICT, detail, current_version=exc.current_version
    )


@_outcome(BackendUnavailable)
def _backend(exc: BackendUnavailable) -> Outcome:
    detail = exc.detail or "The source's backend cannot answer."
    # Busy is the one reason that clears by itself within moments.
    retry_after = 1 if exc.reason == "busy" else None
    return Outcome(
        "backend-unavailable",
        503,
        Exit.BACKEND,
        detail,
        reason=exc.reason,
        retry_after=retry_after,
    )


@_outcome(VerificationFailed)
def _verification_failed(exc: VerificationFailed) -> Outcome:
    detail = exc.detail or "The connection test failed."
    return Outcome("verification-failed", 422, Exit.BACKEND, detail, reason=exc.reason)


@_outcome(StoreUnavailable)
def _store(exc: StoreUnavailable) -> Outcome:
    return Outcome(
        "store-unavailable",
        503,
        Exit.STORE,
        "The registry's store cannot be reached; try again shortly.",
        reason="store_unavailable",
        retry_after=1,
    )


@_outcome(AuthenticationFailed)
def _unauthenticated(exc: AuthenticationFailed) -> Outcome:
    # One answer whatever the cause: the client is not told which (`exc.cause` is for metrics).
    detail = "A valid API key is required: Authorization: Bearer <token>."
    return Outcome("unauthorized", 401, Exit.DENIED, detail)


@_outcome(PermissionDenied)
def _forbidden(exc: PermissionDenied) -> Outcome:
    detail = f"This API key lacks the scope {exc.scope}."
    return Outcome("forbidden", 403, Exit.DENIED, detail, required_scope=exc.scope)


@_outcome(SecretUnreadable)
def _secret_unreadable(exc: SecretUnreadable) -> Outcome:
    detail = "A stored secret cannot be decrypted by this server."
    return Outcome("secret-unreadable", 500, Exit.SECRET, detail)


@_outcome(WebhookNotFound)
def _webhook_not_found(exc: WebhookNotFound) -> Outcome:
    return Outcome("webhook-not-found", 404, Exit.NOT_FOUND, "No webhook endpoint has this id.")


@_outcome(DeliveryNotFound)
def _delivery_not_found(exc: DeliveryNotFound) -> Outcome:
    detail = "The webhook endpoint has no delivery with this id."
    return Outcome("delivery-not-found", 404, Exit.NOT_FOUND, detail)
