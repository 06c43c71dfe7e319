"""The OIDC verifier against an issuer on loopback: one fetch at a time, the refetch window, an
issuer that is down or silent, algorithms fixed by configuration, and EdDSA keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import OKPAlgorithm

from adapters.oidc import OidcVerifier, parse_algorithms
from domain.errors import AuthenticationFailed
from domain.keys import Scope
from tests.helpers import TEST_LOOP
from tests.oidc_issuer import AUDIENCE, Issuer, new_key, running_issuer


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer() as issuer:
        issuer.add_key("rsa-1", "RSA")
        yield issuer


def _verifier(issuer: Issuer, **options: object) -> OidcVerifier:
    return OidcVerifier(issuer.url, AUDIENCE, ["RS256", "ES256", "EdDSA"], **options)  # type: ignore[arg-type]


def _cause(verifier: OidcVerifier, token: str) -> str:
    with pytest.raises(AuthenticationFailed) as failed:
        TEST_LOOP.run(verifier.verify(token))
    return failed.value.cause


def test_concurrent_first_tokens_share_one_fetch_and_scopes_come_from_the_claim(
    issuer: Issuer,
) -> None:
    verifier = _verifier(issuer)
    tokens = [issuer.token("rsa-1", sub=f"user{n}", scope="sources:read openid") for n in range(20)]

    async def all_at_once() -> list[object]:
        return list(await asyncio.gather(*(verifier.verify(t) for t in tokens)))

    verified = TEST_LOOP.run(all_at_once())
    assert issuer.jwks_fetches() == 1
    principal = verified[3].principal()  # type: ignore[attr-defined]
    assert principal.identity == "oidc:user3"
    assert principal.scopes == {Scope.READ}
    assert principal.key_id is None


def test_an_unknown_kid_fetches_again_at_most_once_per_window(issuer: Issuer) -> None:
    window = 1.0
    verifier = _verifier(issuer, refetch_after=window)
    stray = issuer.token("rsa-9", key=new_key("RSA"))
    coming = issuer.add_key("rsa-2", "EC")
    rotated = issuer.token("rsa-2")
    issuer.remove_key("rsa-2")
    TEST_LOOP.run(verifier.verify(issuer.token("rsa-1")))
    first = time.monotonic()
    for _ in range(20):
        assert _cause(verifier, stray) == "jwt_unknown_kid"
    # However many unknown kids come, a fetch per window at most (the first one included).
    assert issuer.jwks_fetches() <= 2 + int((time.monotonic() - first) / window)
    issuer.add_key("rsa-2", key=coming)  # the issuer rotates it in: picked up within a window
    deadline = time.monotonic() + 10
    while True:
        try:
            TEST_LOOP.run(verifier.verify(rotated))
            break
        except AuthenticationFailed:
            assert time.monotonic() < deadline
            time.sleep(0.1)  # the refetch window, not a synchronisation
    assert issuer.jwks_fetches() <= 2 + int((time.monotonic() - first) / window)


@pytest.mark.parametrize("mode", ["down", "silent"])
def test_an_issuer_that_does_not_answer_is_401_within_the_timeout_then_not_asked(
    issuer: Issuer, mode: str
) -> None:
    issuer.mode = mode
    verifier = _verifier(issuer, timeout=0.5)
    started = time.monotonic()
    assert _cause(verifier, issuer.token("rsa-1")) == "jwks_unavailable"
    assert time.monotonic() - started < 3
    asked = len(issuer.requests)
    assert _cause(verifier, issuer.token("rsa-1")) == "jwks_unavailable"
    assert len(issuer.requests) == asked  # within 10 s of a failed fetch, none again


def test_algorithms_come_from_configuration_only(issuer: Issuer) -> None:
    issuer.add_key("ec-1", "EC")
    verifier = OidcVerifier(issuer.url, AUDIENCE, ["ES256"])
    assert _cause(verifier, issuer.token("rsa-1")) == "jwt_algorithm"
    assert _cause(verifier, issuer.unsigned_token("ec-1")) == "jwt_algorithm"
    assert _cause(verifier, issuer.confused_token("rsa-1")) == "jwt_algorithm"
    # An RS256 header over an EC key: the key does not fit the algorithm.
    rsa_only = OidcVerifier(issuer.url, AUDIENCE, ["RS256"])
    forged = jwt.encode(issuer.claims(), new_key("RSA"), algorithm="RS256", headers={"kid": "ec-1"})
    assert _cause(rsa_only, forged) == "jwt_unknown_kid"
    TEST_LOOP.run(verifier.verify(issuer.token("ec-1")))
    for bad in ("none", "HS256", "RS256,none", ""):
        with pytest.raises(ValueError, match="unsupported algorithm"):
            parse_algorithms(bad)


def test_eddsa_keys_verify(issuer: Issuer) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    issuer.jwks = lambda: {"keys": [{**jwk, "kid": "ed-1"}]}  # type: ignore[method-assign]
    token = jwt.encode(
        issuer.claims(sub="eve"), private, algorithm="EdDSA", headers={"kid": "ed-1"}
    )
    verified = TEST_LOOP.run(_verifier(issuer).verify(token))
    assert verified.subject == "eve"
