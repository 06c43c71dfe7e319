"""The test run's own guard: no DNS query leaves the machine, here or in a process it starts."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

RESOLVE = "import socket, sys; print(socket.getaddrinfo(sys.argv[1], 5432)[0][4][0])"


@pytest.mark.parametrize("name", ["db.internal", "db", "tdb-no-such-host.invalid", "ip6-localhost"])
def test_a_name_is_unknown_without_a_query(name: str) -> None:
    with pytest.raises(socket.gaierror) as raised:
        socket.getaddrinfo(name, 5432)
    assert raised.value.errno == socket.EAI_NONAME


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("localhost", "127.0.0.1"),
        (b"LocalHost.", "127.0.0.1"),
    ],
)
def test_addresses_and_localhost_resolve(host: str | bytes, address: str) -> None:
    found = {info[4][0] for info in socket.getaddrinfo(host, 5432, type=socket.SOCK_STREAM)}
    assert found == {address}


def test_a_python_process_started_by_a_test_has_the_guard_too() -> None:
    unknown = subprocess.run(
        [sys.executable, "-c", RESOLVE, "db.internal"], capture_output=True, text=True, timeout=60
    )
    assert unknown.returncode != 0
    assert "gaierror" in unknown.stderr
    known = subprocess.run(
        [sys.executable, "-c", RESOLVE, "127.0.0.1"], capture_output=True, text=True, timeout=60
    )
    assert known.stdout.strip() == "127.0.0.1"
