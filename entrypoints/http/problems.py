"""Errors as RFC 9457 problem responses; no stack trace or secret ever leaves.

A domain error's answer is its outcome in the runtime's table (`entrypoints/runtime/outcomes.py`);
what is here is the HTTP glue: the headers, and the errors only HTTP has (Litestar's own, and the
unexpected one)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, get_args, get_origin

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import KwargDefinition
from litestar.types import ExceptionHandlersMap

from domain.errors import AuthenticationFailed, DomainError, SecretUnreadable
from entrypoints.logs import REQUEST_ID, events
from entrypoints.metrics import AUTH_FAILURES
from entrypoints.presenters import FieldProblem, Problem
from entrypoints.runtime.outcomes import Outcome, outcome_of, problem_type

PROBLEM_JSON = "application/problem+json"
NONE = type(None)
# The scope key that marks a request whose client closed the connection before its body was read.
CLIENT_GONE = "tdb_client_gone"
log = logging.getLogger("tdb.http")


def problem(
    status: int, slug: str, detail: str = "", headers: dict[str, str] | None = None, **extra: Any
) -> Response[Problem]:
    """A problem+json response."""
    body = Problem(
        type=problem_type(slug),
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        request_id=REQUEST_ID.get(),
        **extra,
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def answer(outcome: Outcome) -> Response[Problem]:
    """An outcome as a problem+json response."""
    headers: dict[str, str] = {}
    if outcome.retry_after is not None:
        headers["Retry-After"] = str(outcome.retry_after)
    if outcome.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Response(
        outcome.problem(REQUEST_ID.get()),
        status_code=outcome.status,
        media_type=PROBLEM_JSON,
        headers=headers or None,
    )


def unauthorized() -> Response[Problem]:
    """The one 401 answer, whatever the cause."""
    return answer(outcome_of(AuthenticationFailed()))


def _domain(request: Request[Any, Any, Any], exc: DomainError) -> Response[Problem]:
    try:
        outcome = outcome_of(exc)
    except LookupError:  # an error the table does not name yet (a unit test says which)
        return _unexpected(request, exc)
    if isinstance(exc, AuthenticationFailed):
        AUTH_FAILURES.labels(exc.cause).inc()
    elif isinstance(exc, SecretUnreadable):
        events.error(
            "secret_unreadable",
            detail="a stored secret cannot be decrypted: is TDB_SECRET_KEY the key it was stored"
            " with?",
        )
    return answer(outcome)


# The values msgspec reads as a boolean from a query string (case aside: `True` reads too).
BOOLEAN_VALUES = "must be true or false (or 1 or 0)"


def _parameter_message(request: Request[Any, Any, Any], key: str, message: str) -> str:
    """What a handler's parameter accepts, in the API's words rather than the decoder's
    (``Expected `int | null`, got `str` ``): its type and bounds, from its declaration."""
    field = request.route_handler.parsed_fn_signature.parameters.get(key)
    if field is None:
        return message
    kinds = {kind for kind in get_args(field.annotation) or (field.annotation,) if kind is not NONE}
    bounds = field.kwarg_definition if isinstance(field.kwarg_definition, KwargDefinition) else None
    if kinds == {bool}:
        return BOOLEAN_VALUES
    if kinds == {int}:
        low, high = (bounds.ge, bounds.le) if bounds is not None else (None, None)
        if low is not None and high is not None:
            return f"must be an integer between {low} and {high}"
        if low is not None:
            return f"must be an integer of at least {low}"
        return "must be an integer"
    if (
        bounds is not None
        and bounds.max_items is not None
        and any(get_origin(kind) is list for kind in kinds)
    ):
        return f"may be given at most {bounds.max_items} times"
    return message


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Problem]:
    errors = [
        FieldProblem(
            str(item.get("key") or "body"),
            _parameter_message(request, str(item["key"]), str(item.get("message", "is invalid")))
            if item.get("key")
            else str(item.get("message", "is invalid")),
        )
        for item in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(item, dict)
    ]
    return problem(
        400,
        "invalid-input",
        "The request is malformed or has invalid fields.",
        errors=errors or None,
    )


# Headers an HTTP error may carry to the client: what the method or the body should have been.
_PASSED_HEADERS = {"allow", "accept-post", "accept-patch"}


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    if exc.status_code == 401:
        return unauthorized()
    if exc.status_code >= 500:
        if request.scope.get(CLIENT_GONE):
            # Not a server failure: the client left mid-body. Nobody will read the answer.
            log.debug("client disconnected before its request body was read")
            return problem(400, "client-disconnected", "The client closed the connection.")
        return _unexpected(request, exc)
    slug = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "-")
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() in _PASSED_HEADERS}
    return problem(exc.status_code, slug, exc.detail or "", headers=headers or None)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    # The traceback goes to the log, redacted (a driver's message may quote a connection
    # string), with the request id the client gets in the body; the client gets nothing else.
    events.error(
        "unexpected_error",
        error=type(exc).__name__,
        method=request.method,
        route=request.scope.get("path_template"),
        exc_info=exc,
    )
    return problem(
        500,
        "internal-error",
        "The server failed to handle this request; the request_id identifies it in the"
        " server's log.",
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: _domain,
    ValidationException: _validation,
    HTTPException: _http,
    Exception: _unexpected,
}
