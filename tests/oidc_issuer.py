"""An OIDC issuer on loopback: a discovery document and a JWKS served over HTTP from keys the
test makes (RSA and EC), tokens signed with them, a key rotation, and an issuer that is down
(503) or silent (accepts, never answers) on demand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "tdb-tests"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key(kind: str = "RSA") -> Any:
    """A private key: RSA 2048, or EC on P-256."""
    if kind == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


class Issuer:
    """The issuer's keys and its HTTP server; `url` is its `iss`."""

    def __init__(self) -> None:
        self._keys: dict[str, Any] = {}
        self.mode = "up"  # "up", "down" (503) or "silent" (never answers)
        self.requests: list[str] = []
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def add_key(self, kid: str, kind: str = "RSA", key: Any = None) -> Any:
        """Publish a new key of this kind (or `key`) under `kid`; return the private key."""
        key = self._keys[kid] = key if key is not None else new_key(kind)
        return key

    def remove_key(self, kid: str) -> None:
        del self._keys[kid]

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in list(self._keys.items()):
            public = key.public_key()
            maker = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
            jwk = maker.to_jwk(public, as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": keys}

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "alice",
            "iat": now,
            "exp": now + 300,
            "scope": "sources:read",
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, kid: str, alg: str | None = None, key: Any = None, **changes: Any) -> str:
        """A token signed by the issuer's key `kid` (or by `key`, claiming `kid`)."""
        signer = key if key is not None else self._keys[kid]
        if alg is None:
            alg = "RS256" if isinstance(signer, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(self.claims(**changes), signer, algorithm=alg, headers={"kid": kid})

    def unsigned_token(self, kid: str, **changes: Any) -> str:
        """`alg: none`: no signature at all."""
        header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
        return f"{header}.{_b64(json.dumps(self.claims(**changes)).encode())}."

    def confused_token(self, kid: str, **changes: Any) -> str:
        """HS256 with the RSA public key (PEM) as the HMAC secret: algorithm confusion."""
        public = (
            self._keys[kid]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
        payload = _b64(json.dumps(self.claims(**changes)).encode())
        signature = hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests.append(self.path)
                if issuer.mode == "silent":
                    issuer._released.wait(30)
                    return
                if issuer.mode == "down":
                    self._send(503, {"error": "down"})
                elif self.path == "/.well-known/openid-configuration":
                    self._send(200, {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"})
                elif self.path == "/jwks":
                    self._send(200, issuer.jwks())
                else:
                    self._send(404, {})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def jwks_fetches(self) -> int:
        return self.requests.count("/jwks")

    def start(self) -> Issuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@contextmanager
def running_issuer() -> Iterator[Issuer]:
    """An issuer serving on a free loopback port for the block's duration."""
    issuer = Issuer().start()
    try:
        yield issuer
    finally:
        issuer.stop()
