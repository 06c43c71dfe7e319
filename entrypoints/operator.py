"""Who acts when `tdb` works on the store directly, with no API key (the CLI, the first start)."""

from __future__ import annotations

import attrs

from domain.keys import ALL_SCOPES, Principal, Scope

OPERATOR = Principal(identity="tdb-cli", scopes=ALL_SCOPES, operator=True)
"""The local operator: every scope; recorded as `tdb-cli` in the audit trail."""
OPERATOR_MASKED = attrs.evolve(OPERATOR, scopes=OPERATOR.scopes - {Scope.SECRETS})
"""The local operator, shown secrets masked (as without `sources:secrets`); still trusted with
them otherwise (a changed host keeps its stored password)."""
