"""Who acts when `tdb` is run against the store directly, without an API key."""

from __future__ import annotations

from domain.keys import ALL_SCOPES, Principal

OPERATOR = Principal(identity="tdb-cli", scopes=ALL_SCOPES)
"""The local operator: every scope; recorded as `tdb-cli` in the audit trail."""
