"""Secrets at rest: AES-256-GCM, keyed from the environment or from a key file made on first run."""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.errors import SecretUnreadable

_VERSION = "v1."
_NONCE_BYTES = 12
KEY_HELP = (
    "the secret key must be 32 random bytes in url-safe base64 (make one with: python -c "
    "'import base64, secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())')"
)


def generate_key() -> bytes:
    """A new key: 32 random bytes, url-safe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32))


class AesGcmCipher:
    """Encrypts each secret with AES-256-GCM and a fresh random nonce: `v1.<b64(nonce|ct|tag)>`."""

    def __init__(self, key: str | bytes) -> None:
        try:
            raw = base64.urlsafe_b64decode(key)
        except (ValueError, TypeError, binascii.Error) as exc:
            raise ValueError(KEY_HELP) from exc
        if len(raw) != 32:
            raise ValueError(KEY_HELP)
        self._aead = AESGCM(raw)

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plaintext.encode(), None)
        return _VERSION + base64.urlsafe_b64encode(sealed).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            if not ciphertext.startswith(_VERSION):
                raise ValueError("unknown format")
            sealed = base64.urlsafe_b64decode(ciphertext[len(_VERSION) :])
            plain = self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], None)
            return plain.decode()
        except (InvalidTag, ValueError, binascii.Error):
            raise SecretUnreadable("a stored secret cannot be decrypted with this key") from None


def derived_key(key: str | bytes, purpose: str) -> bytes:
    """A key for one purpose (url-safe base64, as `AesGcmCipher` takes it) derived from the
    secret key by HMAC-SHA256: what is sealed for one purpose never opens for another, and
    nothing sealed with it tells anything of the secrets' key."""
    digest = hmac.new(key if isinstance(key, bytes) else key.encode(), purpose.encode(), "sha256")
    return base64.urlsafe_b64encode(digest.digest())


def load_or_create_key_file(path: Path) -> bytes:
    """The key stored in `path`, created there (mode 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole to a private file, then linked into place: when several workers start at
        # once, exactly one link wins and nobody ever reads a half-written key.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(generate_key())
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes().strip()
