"""Signing in by pasting a key, and signing out."""

from __future__ import annotations

from litestar import get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from domain.errors import AuthenticationFailed
from entrypoints.runtime.outcomes import outcome_of
from entrypoints.ui.pages import SIGN_IN, UI_PATH, UiRequest, over_tls, page, session_of, ui_of
from entrypoints.ui.session import cleared_cookie

HOME = f"{UI_PATH}/sources"


def _next(target: str) -> str:
    """Where to go once signed in: a page of the UI, never another site (`//host`, `/\\host`)."""
    if target.startswith(f"{UI_PATH}/") and "\\" not in target and "//" not in target:
        return target
    return HOME


@get("/sign-in", name="ui-sign-in")
async def sign_in_page(request: UiRequest, next: FromQuery[str] = HOME) -> Template:
    session = session_of(request)
    fresh = None
    if session is None:
        # The sign-in form needs a CSRF token too: an anonymous session carries it.
        fresh = session = request.state.session = ui_of(request).seal.new()
    response = page(request, "sign_in.html", next=_next(next))
    if fresh is not None:
        response.cookies.append(ui_of(request).seal.cookie(fresh, over_tls(request)))
    return response


@post("/sign-in", status_code=303)
async def sign_in(request: UiRequest) -> Template | Redirect:
    form = await request.form()
    token = str(form.get("token", "")).strip()
    ui = ui_of(request)
    try:
        await ui.principal(token)
    except AuthenticationFailed as exc:
        outcome = outcome_of(exc)
        detail = "This key is not valid (unknown, revoked or mistyped)."
        return page(
            request,
            "sign_in.html",
            status=outcome.status,
            outcome=outcome,
            detail=detail,
            next=_next(str(form.get("next", HOME))),
        )
    response = Redirect(_next(str(form.get("next", HOME))), status_code=303)
    response.cookies.append(ui.seal.cookie(ui.seal.new(token), over_tls(request)))
    return response


@post("/sign-out", status_code=303)
async def sign_out(request: UiRequest) -> Redirect:
    response = Redirect(SIGN_IN, status_code=303)
    response.cookies.append(cleared_cookie(over_tls(request)))
    return response


HANDLERS = [sign_in_page, sign_in, sign_out]
