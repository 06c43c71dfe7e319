"""Who acts when `tdb` works on the store directly, with no API key (the CLI, the first start)."""

from __future__ import annotations

from domain.keys import ALL_SCOPES, Principal

OPERATOR = Principal(identity="tdb-cli", scopes=ALL_SCOPES)
"""The local operator: every scope; recorded as `tdb-cli` in the audit trail."""
