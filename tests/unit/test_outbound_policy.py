"""The outbound policy judges addresses: mapped IPv4 as IPv4, unspecified ones never allowed.

No test here connects anywhere: the policy answers from the addresses alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.connectors.outbound import OutboundPolicy, PolicyRefused, parse_networks
from tests.contract.strategies import mapped_addresses, unspecified_addresses

POLICIES = {
    "default": OutboundPolicy(),
    "everything": OutboundPolicy(allowed=parse_networks("0.0.0.0/0,::/0"), denied=()),
    "no loopback": OutboundPolicy(denied=parse_networks("127.0.0.0/8,::1/128,169.254.0.0/16")),
    "only 10/8": OutboundPolicy(allowed=parse_networks("10.0.0.0/8")),
}


def answering(*addresses: str) -> OutboundPolicy:
    """A policy that allows every network, whose resolver answers these addresses."""

    def resolver(host: str, port: int) -> Sequence[str]:
        return addresses

    return OutboundPolicy(allowed=parse_networks("0.0.0.0/0,::/0"), denied=(), resolver=resolver)


@given(unspecified_addresses, st.sampled_from(sorted(POLICIES)))
def test_no_policy_allows_an_unspecified_address(address: str, policy: str) -> None:
    assert not POLICIES[policy].allows(ipaddress.ip_address(address))


@given(mapped_addresses, st.sampled_from(sorted(POLICIES)))
def test_an_ipv4_mapped_address_is_judged_as_its_ipv4_address(
    mapped: tuple[ipaddress.IPv4Address, str], policy: str
) -> None:
    ipv4, text = mapped
    judge = POLICIES[policy]
    assert judge.allows(ipaddress.ip_address(text)) == judge.allows(ipv4)


@pytest.mark.parametrize("address", ["::ffff:0.0.0.0", "::ffff:0:0", "0:0:0:0:0:ffff:0:0"])
def test_the_mapped_unspecified_address_is_refused_with_loopback_denied(address: str) -> None:
    # Linux connects it to 127.0.0.1: the policy that denies loopback must deny it too.
    with pytest.raises(PolicyRefused):
        POLICIES["no loopback"].resolve(address, 5432)


@given(unspecified_addresses)
def test_a_name_resolving_to_an_unspecified_address_is_refused(address: str) -> None:
    with pytest.raises(PolicyRefused):
        answering(address).resolve("zero.tdb.test", 5432)
    # Among other addresses it is left out, as a denied one is.
    assert answering(address, "192.0.2.7").resolve("zero.tdb.test", 5432) == ("192.0.2.7",)
