"""The secret cipher: round trips, fresh nonces, and refusal of foreign or tampered ciphertext."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from adapters.crypto import AesGcmCipher, generate_key, load_or_create_key_file
from domain.errors import SecretUnreadable

CIPHER = AesGcmCipher(generate_key())


@given(st.text())
def test_every_text_round_trips(plaintext: str) -> None:
    # Lone surrogates are not encodable, and are refused long before they reach the cipher.
    assume(not any("\ud800" <= c <= "\udfff" for c in plaintext))
    ciphertext = CIPHER.encrypt(plaintext)
    assert CIPHER.decrypt(ciphertext) == plaintext


def test_the_same_secret_encrypts_differently_each_time() -> None:
    assert CIPHER.encrypt("s3cret") != CIPHER.encrypt("s3cret")


# Each case makes its ciphertext when it runs: ids stay the same in every collecting process.
@pytest.mark.parametrize(
    "ciphertext",
    [
        pytest.param(lambda: AesGcmCipher(generate_key()).encrypt("s3cret"), id="another-key"),
        pytest.param(lambda: CIPHER.encrypt("s3cret")[:-2] + "AA", id="tampered"),
        pytest.param(lambda: "s3cret", id="never-encrypted"),
        pytest.param(lambda: "v1.!!!", id="not-base64"),
        pytest.param(lambda: "", id="empty"),
    ],
)
def test_foreign_or_tampered_ciphertext_is_unreadable(ciphertext: Callable[[], str]) -> None:
    with pytest.raises(SecretUnreadable):
        CIPHER.decrypt(ciphertext())


@pytest.mark.parametrize("key", ["", "short", "x" * 44, b"\xff" * 32])
def test_bad_keys_are_refused_with_a_hint(key: str | bytes) -> None:
    with pytest.raises(ValueError, match="32 random bytes"):
        AesGcmCipher(key)


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "db.key"
    key = load_or_create_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key_file(path) == key
    AesGcmCipher(key)
