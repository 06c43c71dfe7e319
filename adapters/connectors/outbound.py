"""The outbound policy: which addresses this server may connect to on a source's behalf."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence

from domain.errors import BackendUnavailable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# The host's addresses for a port, as the resolver gives them (getaddrinfo order).
Resolver = Callable[[str, int], Sequence[str]]

ANY_NETWORK = "0.0.0.0/0,::/0"
# Link-local: where cloud metadata services (169.254.169.254) live.
DEFAULT_DENIED_NETWORKS = "169.254.0.0/16,fe80::/10"
# libpq tries the addresses one after another; more would only multiply the wait.
MAX_ADDRESSES = 4


class PolicyRefused(Exception):
    """Every address of the host lies outside what the outbound policy allows."""


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated CIDRs (`10.0.0.0/8, ::1/128`); raises `ValueError` naming a bad one."""
    networks = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not a network in CIDR notation: {item!r}") from None
    return tuple(networks)


def is_address(host: str) -> bool:
    """Whether the host is an IP literal (no lookup needed)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def system_resolver(host: str, port: int) -> Sequence[str]:
    """The host's addresses from the system resolver (hosts file, DNS), in its order."""
    try:
        return [str(ipaddress.ip_address(host))]  # an address is its own answer
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


class OutboundPolicy:
    """Allowed networks minus denied ones, checked on the addresses a host resolves to.

    A connection is then made to the checked addresses themselves (libpq `hostaddr`), so the
    name is never looked up a second time: DNS rebinding cannot slip a denied address past.
    """

    def __init__(
        self,
        allowed: Iterable[Network] | None = None,
        denied: Iterable[Network] | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._allowed = tuple(parse_networks(ANY_NETWORK) if allowed is None else allowed)
        self._denied = tuple(parse_networks(DEFAULT_DENIED_NETWORKS) if denied is None else denied)
        self._resolve = resolver

    @classmethod
    def from_text(
        cls, allowed: str | None, denied: str | None, resolver: Resolver = system_resolver
    ) -> OutboundPolicy:
        """A policy from the settings' comma-separated CIDR lists (None: the defaults)."""
        return cls(
            None if allowed is None else parse_networks(allowed),
            None if denied is None else parse_networks(denied),
            resolver,
        )

    def allows(self, address: Address) -> bool:
        """Whether this one address may be connected to: never an unspecified one."""
        # An IPv4-mapped IPv6 address reaches the IPv4 host: judge it as that host.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        # 0.0.0.0 and :: name no host: Linux connects them to this machine itself, whatever
        # the allowed and denied networks say of loopback.
        if address.is_unspecified:
            return False
        return any(address in n for n in self._allowed if n.version == address.version) and not any(
            address in n for n in self._denied if n.version == address.version
        )

    def resolve(self, host: str, port: int) -> tuple[str, ...]:
        """The host's allowed addresses, at most `MAX_ADDRESSES`, in the resolver's order.

        Raises `BackendUnavailable("unreachable")` if the name does not resolve and
        `PolicyRefused` if none of its addresses is allowed.
        """
        try:
            found = self._resolve(host, port)
        except (OSError, UnicodeError):
            raise BackendUnavailable(
                "unreachable", f"cannot resolve the host name {host!r}"
            ) from None
        return self._allowed_of(host, found)

    def resolve_now(self, host: str, port: int) -> tuple[str, ...] | None:
        """What `resolve` answers, if that needs no lookup that could wait; else None.

        An address is its own answer, and a resolver that remembers answers (a `known(host,
        port)` method, as `CachingResolver` has) gives the one it holds: the same addresses, and
        the same checks on them, as `resolve`.
        """
        if is_address(host):
            return self.resolve(host, port)
        known = getattr(self._resolve, "known", None)
        if known is None:
            return None
        try:
            found = known(host, port)
        except (OSError, UnicodeError):
            raise BackendUnavailable(
                "unreachable", f"cannot resolve the host name {host!r}"
            ) from None
        return None if found is None else self._allowed_of(host, found)

    def _allowed_of(self, host: str, found: Sequence[str]) -> tuple[str, ...]:
        """The allowed ones of the host's addresses, at most `MAX_ADDRESSES`, in their order."""
        if not found:
            raise BackendUnavailable("unreachable", f"the host name {host!r} has no address")
        addresses: list[str] = []
        for text in found:
            address = ipaddress.ip_address(text)
            if self.allows(address) and str(address) not in addresses:
                addresses.append(str(address))
        if not addresses:
            raise PolicyRefused(host)
        return tuple(addresses[:MAX_ADDRESSES])
