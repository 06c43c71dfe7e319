"""Run by Python at start-up in every process the tests start: see loopback_dns."""

import loopback_dns

loopback_dns.install()
