"""The web UI's session: what its cookie holds, sealed, and the CSRF token of its forms.

The cookie holds the session sealed (AES-256-GCM, a key of its own derived from the secret key):
the token is never in it in clear, a changed cookie does not open, and every replica and
worker opens what another sealed. The session holds the token itself, not a copy of what the
key may do: every request authenticates it again (through the short-lived principal cache, as
the API does), so a revoked key's session ends with the key.

Before sign-in the session holds only a CSRF token, so the sign-in form has one too; signing
in seals a new session with a new CSRF token.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Callable

import attrs
from litestar.datastructures import Cookie

from application.ports import SecretCipher
from domain.errors import SecretUnreadable

COOKIE = "tdb_session"
COOKIE_PATH = "/ui"
CSRF_FIELD = "csrf_token"
# A session that is not signed in: long enough to fill the sign-in form.
ANONYMOUS_TTL = 3600.0


@attrs.frozen
class Session:
    """One browser's session: the token it signed in with (None: not signed in), the CSRF
    token its forms carry, and when it ends (seconds since the epoch)."""

    token: str | None
    csrf: str
    expires: float

    def csrf_matches(self, given: str | None) -> bool:
        """Whether a form's CSRF token is this session's."""
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class SessionSeal:
    """Seals sessions into cookie values and opens them; a cookie that does not open, or
    whose session has ended, is no session."""

    def __init__(
        self, cipher: SecretCipher, ttl: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._cipher = cipher
        self._ttl = ttl
        self._clock = clock

    def new(self, token: str | None = None) -> Session:
        """A fresh session (signed in with `token`, or anonymous) with a new CSRF token."""
        ttl = self._ttl if token is not None else ANONYMOUS_TTL
        return Session(token, secrets.token_urlsafe(32), self._clock() + ttl)

    def seal(self, session: Session) -> str:
        plain = json.dumps({"t": session.token, "c": session.csrf, "e": session.expires})
        # Without base64's padding: a cookie value with `=` in it goes in quotes.
        return self._cipher.encrypt(plain).rstrip("=")

    def open(self, sealed: str | None) -> Session | None:
        if not sealed:
            return None
        try:
            padded = sealed + "=" * (-len(sealed.partition(".")[2]) % 4)
            fields = json.loads(self._cipher.decrypt(padded))
            session = Session(fields["t"], fields["c"], float(fields["e"]))
        except (SecretUnreadable, ValueError, KeyError, TypeError):
            return None
        return session if session.expires > self._clock() else None

    def cookie(self, session: Session, secure: bool) -> Cookie:
        """The cookie that carries this session: HttpOnly, SameSite=Strict, Secure over TLS,
        sent to the UI's paths only, kept until the session ends."""
        return Cookie(
            key=COOKIE,
            value=self.seal(session),
            path=COOKIE_PATH,
            max_age=max(1, int(session.expires - self._clock())),
            httponly=True,
            samesite="strict",
            secure=secure,
        )


def cleared_cookie(secure: bool) -> Cookie:
    """The cookie that ends a session in the browser."""
    return Cookie(
        key=COOKIE,
        value="",
        path=COOKIE_PATH,
        max_age=0,
        httponly=True,
        samesite="strict",
        secure=secure,
    )
