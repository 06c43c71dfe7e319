"""Every way a registry operation can fail, as plain exceptions that carry data, not HTTP codes."""

from __future__ import annotations

from collections.abc import Iterable

import attrs


class DomainError(Exception):
    """Base of every error the registry raises on purpose."""


@attrs.frozen
class FieldError:
    """One problem with one input field, named by its dotted path (`connection.port`)."""

    field: str
    message: str


class InvalidInput(DomainError):
    """The input breaks one or more rules; each broken rule is one `FieldError`."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))

    @classmethod
    def single(cls, field: str, message: str) -> InvalidInput:
        return cls([FieldError(field, message)])


class InvalidConnection(InvalidInput):
    """The connection object does not satisfy its connector's declaration."""


class HostNotAllowed(InvalidConnection):
    """The connection is well formed, but its host is outside the outbound policy."""

    reason = "host_not_allowed"

    def __init__(self, field: str, detail: str) -> None:
        self.detail = detail
        super().__init__([FieldError(field, "is not a host this server may connect to")])


class UnknownSourceType(DomainError):
    """No connector of this type is registered in this build."""

    def __init__(self, source_type: str, available: Iterable[str]) -> None:
        self.source_type = source_type
        self.available = tuple(sorted(available))
        super().__init__(f"unknown source_type {source_type!r}")


class SourceNotFound(DomainError):
    """No source has this id (it never existed, or it was deleted)."""

    def __init__(self, source_id: object) -> None:
        self.source_id = source_id
        super().__init__(f"source {source_id} not found")


class WatchNotFound(DomainError):
    """The source exists but has no watch."""

    def __init__(self, source_id: object) -> None:
        self.source_id = source_id
        super().__init__(f"source {source_id} has no watch")


class DuplicateSourceName(DomainError):
    """Another source already has this name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a source named {name!r} already exists")


class VersionMismatch(DomainError):
    """A conditional change named a version the source no longer has (or an unknown one)."""

    def __init__(self, source_id: object, current_version: int) -> None:
        self.source_id = source_id
        self.current_version = current_version
        super().__init__(f"source {source_id} is at version {current_version}")


class VerificationFailed(DomainError):
    """A change asked to be verified first, and the connection test failed: nothing was stored."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class BackendUnavailable(DomainError):
    """The source is registered but its backend cannot answer; `reason` says why, for machines."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)

    def __reduce__(self) -> tuple[type[BackendUnavailable], tuple[str, str]]:
        # Pickled as its two fields (it crosses from worker processes), not as its message.
        return (type(self), (self.reason, self.detail))


class StoreUnavailable(DomainError):
    """The registry's own store cannot be reached right now."""


class AuthenticationFailed(DomainError):
    """The token is missing, malformed, unknown or revoked.

    `cause` says which, for the operator's metrics; the client is deliberately not told.
    """

    CAUSES = (
        "missing",
        "malformed",
        "unknown",
        "revoked",
        "expired",
        # A token that is not a tdb key, verified as an OIDC token (JWT):
        "jwt_malformed",
        "jwt_algorithm",
        "jwt_unknown_kid",
        "jwt_signature",
        "jwt_expired",
        "jwt_claims",
        "jwks_unavailable",
    )

    def __init__(self, cause: str = "unknown") -> None:
        self.cause = cause
        super().__init__(f"authentication failed: {cause}")


class PermissionDenied(DomainError):
    """The caller is authenticated but lacks the scope this operation needs."""

    def __init__(self, scope: str) -> None:
        # str() of the scope enum: its value, `sources:write`, not the enum's repr.
        self.scope = str(scope)
        super().__init__(f"this operation needs the scope {self.scope}")


class ApiKeyNotFound(DomainError):
    """No API key has this id."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"API key {key_id!r} not found")


class DuplicateKeyName(DomainError):
    """An API key that is not revoked already has this name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"an active API key is already named {name!r}; revoke it first or choose another name"
        )


class KeyNotRotatable(DomainError):
    """A key that is revoked, expired or already replaced by a rotation cannot be rotated."""

    def __init__(self, key_id: str, why: str) -> None:
        self.key_id = key_id
        self.why = why
        super().__init__(f"API key {key_id!r} cannot be rotated: it is {why}")


class SecretUnreadable(DomainError):
    """A stored secret cannot be decrypted with the configured key."""


class WebhookNotFound(DomainError):
    """No webhook endpoint has this id."""

    def __init__(self, endpoint_id: object) -> None:
        self.endpoint_id = endpoint_id
        super().__init__(f"webhook {endpoint_id} not found")


class DeliveryNotFound(DomainError):
    """The webhook endpoint has no delivery of this id."""

    def __init__(self, delivery_id: object) -> None:
        self.delivery_id = delivery_id
        super().__init__(f"delivery {delivery_id} not found")
