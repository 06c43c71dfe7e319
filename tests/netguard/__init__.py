"""Keeps every Python process of the test run off the network's resolver (see loopback_dns)."""
