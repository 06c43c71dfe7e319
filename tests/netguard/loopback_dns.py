"""Host names resolve to loopback only, without a DNS query, in every process of the test run.

Tests send traffic to loopback addresses only, DNS queries included. A test that registers a
source at `db.internal` makes tdb resolve that name (the outbound policy checks where a source
points), and the machine's resolver is off the machine. With `install()`, `getaddrinfo`
answers IP literals and the names of the loopback interface as before, and calls every other
name unknown at once, as a resolver answering NXDOMAIN would: the same answer on every
machine, and no packet leaves it.

`tests/conftest.py` installs it in the test process and puts this folder first on PYTHONPATH,
so that `sitecustomize.py` here installs it in every Python process the tests start too (tdb
servers, CLI runs).
"""

from __future__ import annotations

import socket
from typing import Any

# Names /etc/hosts gives the loopback interface on Debian: resolved from that file, never DNS.
LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})

_getaddrinfo = socket.getaddrinfo


def loopback_getaddrinfo(
    host: bytes | str | None,
    port: bytes | str | int | None,
    family: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
) -> Any:
    """`socket.getaddrinfo`, with every name but the loopback ones treated as unknown."""
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name.lower().rstrip(".") not in LOOPBACK_NAMES:
        # A numeric host only: an IP literal resolves as ever; a name fails with EAI_NONAME.
        flags |= socket.AI_NUMERICHOST
    return _getaddrinfo(host, port, family, type, proto, flags)


def install() -> None:
    socket.getaddrinfo = loopback_getaddrinfo
