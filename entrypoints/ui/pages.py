"""What every page of the web UI shares: who is signed in, the use cases, the CSRF check, how a
page is rendered and how a refused operation is shown (the runtime's outcome, as the API and
the CLI give it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import attrs
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template

from application.keys import Authenticate, PrincipalCache
from domain.errors import AuthenticationFailed, DomainError, PermissionDenied
from domain.keys import Principal, Scope
from entrypoints.container import Container
from entrypoints.runtime.outcomes import Exit, Outcome, outcome_of
from entrypoints.ui.session import COOKIE, CSRF_FIELD, Session, SessionSeal, cleared_cookie

UI_PATH = "/ui"
SIGN_IN = f"{UI_PATH}/sign-in"
# Paths served without a session: signing in, and the UI's own stylesheet and script.
PUBLIC = (SIGN_IN, f"{UI_PATH}/static/")
UiRequest = Request[Principal, str, Any]


class Ui:
    """The UI's share of the process: the container, the session seal, the principal cache."""

    def __init__(self, container: Container) -> None:
        settings = container.settings()
        self.container = container
        self.seal = SessionSeal(container.session_cipher(), settings.ui_session_ttl)
        self.principals = PrincipalCache(settings.auth_cache_ttl)
        self.always_secure = settings.ui_secure_cookie
        self._use_cases: dict[str, Any] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> Ui:
        # Litestar copies a router as the app registers it; this is the process's one share,
        # and the container it holds cannot be copied.
        return self

    def use_case(self, name: str) -> Any:
        """The container's use case of this name, made at its first use and kept (a use case
        holds only the container's singletons)."""
        made = self._use_cases.get(name)
        if made is None:
            made = self._use_cases[name] = getattr(self.container, name)()
        return made

    async def principal(self, token: str) -> Principal:
        """Who the token is, as the API's `BearerAuth` finds it: the same `Authenticate` use
        case behind the same kind of short-lived cache."""
        principal = self.principals.get(token)
        if principal is None:
            authenticate: Authenticate = self.use_case("authenticate")
            principal = await authenticate(token)
            self.principals.put(token, principal)
        return principal


def ui_of(request: Request[Any, Any, Any]) -> Ui:
    found: Ui = request.state.ui
    return found


def session_of(request: Request[Any, Any, Any]) -> Session | None:
    found: Session | None = request.state.session
    return found


def over_tls(request: Request[Any, Any, Any]) -> bool:
    """Whether the session cookie is marked Secure: over TLS, or always where the server is
    told it sits behind a proxy that ends TLS (`TDB_UI_SECURE_COOKIE`)."""
    return request.scope["scheme"] == "https" or ui_of(request).always_secure


def _sign_in_again(request: Request[Any, Any, Any]) -> Response[Any]:
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    where = f"{SIGN_IN}?next={quote(target, safe='')}" if request.method == "GET" else SIGN_IN
    response = Redirect(where, status_code=303)
    response.cookies.append(cleared_cookie(over_tls(request)))
    return response


class UiAuth:
    """The UI router's `before_request` hook: opens the session, authenticates its token,
    checks the route's scope and, on a form, its CSRF token.

    No session, an ended one or a token no longer valid (a revoked key) sends the browser to
    the sign-in page. The scope check is the API's rule (`Principal.can`, then the use case
    checks again); a refusal is the runtime's outcome, shown as a page.
    """

    def __init__(self, ui: Ui) -> None:
        self._ui = ui

    async def __call__(self, request: Request[Any, Any, Any]) -> Response[Any] | None:
        ui = self._ui
        request.state.ui = ui
        session = request.state.session = ui.seal.open(request.cookies.get(COOKIE))
        if request.method == "POST":
            form = await request.form()
            if session is None or not session.csrf_matches(form.get(CSRF_FIELD)):
                return _refused_form(request)
        if request.url.path.startswith(PUBLIC):
            return None
        if session is None or session.token is None:
            return _sign_in_again(request)
        try:
            principal = await ui.principal(session.token)
        except AuthenticationFailed:
            return _sign_in_again(request)
        request.scope["user"] = principal
        required: Scope | None = request.scope["route_handler"].opt.get("scope")
        if required is not None and not principal.can(required):
            raise PermissionDenied(required)
        return None


def _refused_form(request: Request[Any, Any, Any]) -> Response[Any]:
    """A form without this session's CSRF token: refused, nothing done."""
    outcome = Outcome(
        "csrf-token-mismatch",
        403,
        Exit.DENIED,
        "This form has expired or did not come from this site; reload the page and try again.",
    )
    return page(request, "error.html", status=403, outcome=outcome)


def can(request: UiRequest, scope: Scope) -> bool:
    user = request.scope.get("user")
    return user is not None and user.can(scope)


def page(
    request: Request[Any, Any, Any], template: str, status: int = 200, **context: Any
) -> Template:
    """A page: the template with what every page shows (who is signed in, what they may do,
    the session's CSRF token for its forms)."""
    session = session_of(request)
    user: Principal | None = request.scope.get("user")
    return Template(
        template_name=template,
        status_code=status,
        context={
            "user": user,
            "can_write": user is not None and user.can(Scope.WRITE),
            "can_audit": user is not None and user.can(Scope.AUDIT),
            # What the key may do, by scope name: a link or a form a scope opens shows only
            # for it (`{% if 'webhooks:manage' in scopes %}`).
            "scopes": frozenset(str(s) for s in user.scopes) if user is not None else frozenset(),
            "csrf_field": CSRF_FIELD,
            "csrf_token": session.csrf if session is not None else "",
            "path": request.url.path,
            **context,
        },
    )


@attrs.frozen
class FormErrors:
    """An outcome shown on a form: its detail at the top, and each field's message beside it."""

    outcome: Outcome

    @property
    def by_field(self) -> Mapping[str, str]:
        return {f: m for f, m in self.outcome.errors or ()}


def domain_error_page(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    """A refused operation on a page: the runtime's outcome, with its status."""
    outcome = outcome_of(exc)
    return page(request, "error.html", status=outcome.status, outcome=outcome)


def http_error_page(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own refusals (a bad query parameter's type, a route's method): as a page."""
    outcome = Outcome(
        "invalid-input" if exc.status_code == 400 else "http-error",
        exc.status_code,
        Exit.INVALID if exc.status_code < 500 else Exit.USAGE,
        exc.detail if exc.status_code < 500 else "The server failed to answer.",
    )
    return page(request, "error.html", status=exc.status_code, outcome=outcome)


EXCEPTION_HANDLERS: Any = {DomainError: domain_error_page, HTTPException: http_error_page}
