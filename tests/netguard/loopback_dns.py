"""Host names resolve to loopback only, without a DNS query, in every process of the test run.

Tests send traffic to loopback addresses only, DNS queries included. A test that registers a
source at `db.internal` makes tdb resolve that name (the outbound policy checks where a source
points), and the machine's resolver is off the machine. With `install()`, `getaddrinfo`
answers IP literals as before and `localhost` itself, and calls every other name unknown at
once, as a resolver answering NXDOMAIN would: the same answer on every machine, and no packet
leaves it.

`tests/conftest.py` installs it in the test process and puts this folder first on PYTHONPATH,
so that `sitecustomize.py` here installs it in every Python process the tests start too (tdb
servers, CLI runs).
"""

from __future__ import annotations

import socket
from typing import Any

# The one name answered, with the address this machine's /etc/hosts gives it. It is answered
# here, not by the system: a lookup that /etc/hosts cannot answer (an IPv6 address for it, on a
# machine whose file has none) would go on to DNS.
LOOPBACK_NAMES = {"localhost": "127.0.0.1"}

_getaddrinfo = socket.getaddrinfo


def loopback_getaddrinfo(
    host: bytes | str | None,
    port: bytes | str | int | None,
    family: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
) -> Any:
    """`socket.getaddrinfo` for IP literals and `localhost`; any other name is unknown."""
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None:
        host = LOOPBACK_NAMES.get(name.lower().rstrip("."), name)
        # A numeric host only: an IP literal resolves as ever; a name fails with EAI_NONAME.
        flags |= socket.AI_NUMERICHOST
    return _getaddrinfo(host, port, family, type, proto, flags)


def install() -> None:
    socket.getaddrinfo = loopback_getaddrinfo
