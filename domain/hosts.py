"""What a network host field may hold: one DNS name or one IP address, and nothing else."""

from __future__ import annotations

import ipaddress
import re

MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
# Letters, digits and hyphens (RFC 1123); underscores too, as container and service names use them.
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?")
# A last label of digits, or of 0x-hex, is an address in some legacy notation (`127.1`,
# `2130706433`, `0x7f.1`), never a top-level domain: only the plain dotted quad is taken.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")


def host_problem(host: str) -> str | None:
    """Why this string is not one DNS name or one IP address, or None if it is one.

    The same rules hold everywhere, so a host is refused at registration or never: no path (a
    Unix socket), no list, no `user@`, no `:port`, no brackets, no zone, no spaces, ASCII only
    (an internationalised name in its `xn--` form), and IPv4 only as a canonical dotted quad.
    """
    if not host.isascii():
        return "must be ASCII: write an internationalised name in its xn-- form"
    if ":" in host:
        return _ipv6_problem(host)
    if host.endswith("."):
        return "must not end with a dot"
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        return _ipv4_problem(host)
    if len(host) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters"
    for label in labels:
        if not label:
            return "must not have an empty label (a leading, trailing or doubled dot)"
        if len(label) > MAX_LABEL_LENGTH:
            return f"must not have a label longer than {MAX_LABEL_LENGTH} characters"
        if not _LABEL.fullmatch(label):
            return (
                "must be one DNS name or one IP address: letters, digits, '-', '_' and dots"
                " only (no path, list, port, user or space)"
            )
    return None


def _ipv4_problem(host: str) -> str | None:
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        return "must be an IPv4 address as four decimal numbers (such as 192.0.2.10)"
    if address.is_unspecified:
        return "must not be the unspecified address 0.0.0.0"
    return None


def _ipv6_problem(host: str) -> str | None:
    if host.startswith("["):
        return "must be an IPv6 address without brackets (the port is a field of its own)"
    if "%" in host:
        return "must be an IPv6 address without a zone"
    try:
        address = ipaddress.IPv6Address(host)
    except ValueError:
        return "must be one DNS name or one IP address (no port inside: it is a field of its own)"
    if address.is_unspecified:
        return "must not be the unspecified address ::"
    # An IPv4-mapped address reaches its IPv4 address, and is judged as it (`::ffff:0.0.0.0`
    # is 0.0.0.0, which Linux connects to this machine itself).
    if address.ipv4_mapped is not None:
        return _ipv4_problem(str(address.ipv4_mapped))
    return None
