"""OIDC bearer tokens: JWTs verified against the issuer's JWKS (PyJWT), fetched over HTTP (httpx).

The algorithms come from the configuration alone (never from the token): asymmetric ones only, so
`none` and HMAC with a public key as its secret (algorithm confusion) are refused before any key
is looked at. A key is taken from the JWKS by the token's `kid` and built for the one algorithm
the token names, which its type must fit (an RSA key for RS*/PS*, a P-256 key for ES256, ...).

The JWKS is kept `ttl` seconds. It is fetched on the event loop with an async client, one fetch
at a time (a request that needs it meanwhile waits for that fetch), within `timeout` seconds in
all; a `kid` the set lacks fetches it again at most once per `refetch_after` seconds, and so does
a fetch that failed. Tokens that are tdb keys never come here: an issuer that is down or slow
delays only the OIDC tokens that need its keys.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
from jwt.algorithms import get_default_algorithms

from domain.errors import AuthenticationFailed
from domain.keys import VerifiedToken

ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
ALGORITHMS = (*ASYMMETRIC, "EdDSA")
"""The algorithms an operator may allow: signatures by a key pair, never HMAC, never `none`."""
LEEWAY_SECONDS = 30
JWKS_MAX_BYTES = 1024 * 1024
SUBJECT_MAX = 255
_REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
VERIFIED_MAX = 10_000
_SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,2048}")


def parse_algorithms(text: str) -> tuple[str, ...]:
    """The comma-separated algorithm names of `TDB_OIDC_ALGORITHMS`, or `ValueError`."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in ALGORITHMS]
    if bad or not names:
        raise ValueError(
            f"unsupported algorithm(s) {', '.join(bad) or '(none given)'}; allowed: "
            + ", ".join(ALGORITHMS)
        )
    return names


class _Keys:
    """One fetched JWKS: its keys by `kid`, and each key built for an algorithm once."""

    def __init__(self, jwks: Iterable[Mapping[str, Any]], fetched_at: float) -> None:
        self.fetched_at = fetched_at
        self._jwks: dict[str | None, Mapping[str, Any]] = {}
        for jwk in jwks:
            if isinstance(jwk, Mapping) and jwk.get("use", "sig") == "sig":
                kid = jwk.get("kid")
                self._jwks[kid if isinstance(kid, str) else None] = jwk
        self._built: dict[tuple[str | None, str], Any] = {}
        self.verified: dict[str, VerifiedToken] = {}
        """Tokens these keys verified, until they expire: a JWT's validity depends on nothing
        else, so it is not verified again while this JWKS is held (a new JWKS starts empty)."""

    def remember(self, token: str, verified: VerifiedToken) -> None:
        if len(self.verified) >= VERIFIED_MAX:
            self.verified.clear()
        self.verified[token] = verified

    def key(self, kid: str | None, alg: str) -> Any | None:
        """The public key for this `kid` and algorithm; None if the set has none that fits.

        A token without `kid` may use the set's only key."""
        if kid is None and len(self._jwks) == 1:
            kid = next(iter(self._jwks))
        built = self._built.get((kid, alg))
        if built is not None:
            return built
        jwk = self._jwks.get(kid)
        if jwk is None or jwk.get("alg", alg) != alg:
            return None
        try:
            built = get_default_algorithms()[alg].from_jwk(dict(jwk))
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            return None
        self._built[(kid, alg)] = built
        return built


_CAUSES: Sequence[tuple[type[Exception], str]] = (
    (jwt.ExpiredSignatureError, "jwt_expired"),
    (jwt.InvalidSignatureError, "jwt_signature"),
    (jwt.InvalidAlgorithmError, "jwt_algorithm"),
    (jwt.ImmatureSignatureError, "jwt_claims"),
    (jwt.InvalidAudienceError, "jwt_claims"),
    (jwt.InvalidIssuerError, "jwt_claims"),
    (jwt.InvalidIssuedAtError, "jwt_claims"),
    (jwt.MissingRequiredClaimError, "jwt_claims"),
)


def _cause(exc: Exception) -> str:
    for kind, cause in _CAUSES:
        if isinstance(exc, kind):
            return cause
    return "jwt_malformed"


class OidcVerifier:
    """Verifies an issuer's JWTs: the `TokenVerifier` port."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        algorithms: Sequence[str],
        jwks_url: str | None = None,
        jwks_ttl: float = 300.0,
        scopes_claim: str = "scope",
        timeout: float = 5.0,
        refetch_after: float = 10.0,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._algorithms = frozenset(parse_algorithms(",".join(algorithms)))
        self._jwks_url = jwks_url
        self._ttl = jwks_ttl
        self._claim = scopes_claim
        self._timeout = timeout
        self._refetch_after = refetch_after
        self._keys: _Keys | None = None
        self._discovered_url: str | None = None
        self._attempted_at = -float("inf")
        self._failed_at = -float("inf")
        self._fetching: asyncio.Future[_Keys] | None = None
        self.fetches = 0
        """JWKS fetches begun (a figure for the tests and the operator)."""

    async def verify(self, token: str) -> VerifiedToken:
        keys = self._keys
        if keys is not None:
            known = keys.verified.get(token)
            if known is not None and known.expires_at > datetime.now(UTC):
                return known
        header = _header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise AuthenticationFailed("jwt_algorithm")
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationFailed("jwt_malformed")
        key = await self._key(kid, alg)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed(_cause(exc)) from None
        verified = _verified(claims, self._claim)
        if self._keys is not None:
            self._keys.remember(token, verified)
        return verified

    async def _key(self, kid: str | None, alg: str) -> Any:
        keys = self._keys
        now = time.monotonic()
        if keys is None or now >= keys.fetched_at + self._ttl:
            # None yet, or kept their time: fetched again (unless a fetch just failed).
            keys = await self._fetched(now, self._failed_at)
        key = keys.key(kid, alg)
        if key is None:
            # The issuer may have rotated its keys since: fetched again, at most once per
            # `refetch_after` seconds whatever the tokens say.
            key = (await self._fetched(now, self._attempted_at)).key(kid, alg)
        if key is None:
            raise AuthenticationFailed("jwt_unknown_kid")
        return key

    async def _fetched(self, now: float, since: float) -> _Keys:
        """The JWKS fetched now (or by the fetch under way), unless `since` was less than
        `refetch_after` seconds ago: then the keys held (or `jwks_unavailable` if none are
        fresh). A fetch that fails is `jwks_unavailable`."""
        fetching = self._fetching
        if fetching is None or fetching.get_loop() is not asyncio.get_running_loop():
            if now - since < self._refetch_after:
                keys = self._keys
                if keys is None or now >= keys.fetched_at + self._ttl:
                    raise AuthenticationFailed("jwks_unavailable")
                return keys
            self._attempted_at = now
            self.fetches += 1
            fetching = self._fetching = asyncio.ensure_future(self._fetch())
            fetching.add_done_callback(self._fetched_one)
        try:
            return await asyncio.shield(fetching)
        except (httpx.HTTPError, ValueError, TypeError, KeyError, TimeoutError):
            raise AuthenticationFailed("jwks_unavailable") from None

    def _fetched_one(self, fetching: asyncio.Future[_Keys]) -> None:
        if self._fetching is fetching:
            self._fetching = None
        if fetching.cancelled() or fetching.exception() is not None:
            self._failed_at = time.monotonic()
        else:
            self._keys = fetching.result()

    async def _fetch(self) -> _Keys:
        async with asyncio.timeout(self._timeout), _client(self._timeout) as client:
            url = self._jwks_url or self._discovered_url
            if url is None:
                url = await self._discovered(client)
            try:
                jwks = await _get_json(client, url)
            except BaseException:
                self._discovered_url = None  # the issuer may have moved its keys: ask again
                raise
            self._discovered_url = None if self._jwks_url else url
            keys = jwks["keys"]
            if not isinstance(keys, list):
                raise ValueError("the JWKS has no list of keys")
            return _Keys(keys, time.monotonic())

    async def _discovered(self, client: httpx.AsyncClient) -> str:
        config = await _get_json(
            client, self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        )
        # OpenID Connect Discovery 1.0, 4.3: the document must name the issuer it was asked of.
        if config.get("issuer") != self._issuer or not isinstance(config.get("jwks_uri"), str):
            raise ValueError("the discovery document names another issuer or no jwks_uri")
        url: str = config["jwks_uri"]
        return url


def _header(token: str) -> Mapping[str, Any]:
    """The token's JOSE header, read before anything is verified to pick the key (the whole
    token is decoded and checked once, by PyJWT, afterwards)."""
    segment = token.partition(".")[0]
    if token.count(".") != 2 or not _SEGMENT.fullmatch(segment):
        raise AuthenticationFailed("jwt_malformed")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError):
        raise AuthenticationFailed("jwt_malformed") from None
    if not isinstance(header, dict):
        raise AuthenticationFailed("jwt_malformed")
    return header


def _client(timeout: float) -> httpx.AsyncClient:
    # No proxy or certificate settings from the environment: the issuer is the operator's.
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)


async def _get_json(client: httpx.AsyncClient, url: str) -> Mapping[str, Any]:
    async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
        response.raise_for_status()
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > JWKS_MAX_BYTES:
                raise ValueError("the answer is too large")
    document = json.loads(body)
    if not isinstance(document, Mapping):
        raise ValueError("the answer is not a JSON object")
    return document


def _verified(claims: Mapping[str, Any], scopes_claim: str) -> VerifiedToken:
    subject, exp = claims.get("sub"), claims.get("exp")
    if (
        not isinstance(subject, str)
        or not 1 <= len(subject) <= SUBJECT_MAX
        or not subject.isprintable()
        or isinstance(exp, bool)
        or not isinstance(exp, int | float)
    ):
        raise AuthenticationFailed("jwt_claims")
    try:
        expires_at = datetime.fromtimestamp(exp + LEEWAY_SECONDS, UTC)
    except (OverflowError, OSError, ValueError):
        raise AuthenticationFailed("jwt_claims") from None
    return VerifiedToken(
        subject=subject, scope_claim=claims.get(scopes_claim), expires_at=expires_at
    )
