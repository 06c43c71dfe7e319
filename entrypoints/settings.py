"""Settings of a tdb process, read from `TDB_*` environment variables (flags override them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from adapters.connectors.outbound import DEFAULT_DENIED_NETWORKS, parse_networks
from adapters.oidc import parse_algorithms
from domain.webhooks import RETRY_SCHEDULE_DEFAULT, parse_schedule

DEFAULT_DATABASE_URL = "sqlite:///tdb.sqlite3"
# Settings whose variable, set but empty, means an empty list rather than the default.
_MAY_BE_EMPTY = frozenset({"denied_networks"})


def _switch(value: object) -> bool:
    """`on`/`off` (also true/false, 1/0, yes/no) as a bool."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    raise ValueError(f"expected on or off, got {value!r}")


def _one_of(*choices: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            raise ValueError(f"{attribute.name} must be one of {', '.join(choices)}, got {value!r}")

    return check


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


def _not_negative(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


def _schedule(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    parse_schedule(value)  # raises ValueError


def _networks(instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        parse_networks(value)  # raises ValueError naming the bad one


def _optional_positive(
    instance: object, attribute: attrs.Attribute[Any], value: int | None
) -> None:
    if value is not None:
        _positive(instance, attribute, value)


def _algorithms(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    parse_algorithms(value)  # raises ValueError naming the bad one


def _types(instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not [t for t in value.split(",") if t.strip()]:
        raise ValueError("must name at least one source type")


@attrs.frozen
class Settings:
    """Everything a tdb process can be told; each field maps to `TDB_<FIELD>`."""

    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str | None = attrs.field(default=None, repr=False)
    # The folder file sources (csv, parquet, jsonl) are read from: TDB_FILES_ROOT, or by its
    # old name TDB_CSV_ROOT (`files_directory` says which holds).
    csv_root: Path = attrs.field(default=Path("data"), converter=Path)
    files_root: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    # Comma-separated source types to enable (built-in or plug-in); None: every one that loads.
    connectors: str | None = attrs.field(default=None, validator=_types)
    connect_timeout: float = attrs.field(default=5.0, converter=float, validator=_positive)
    statement_timeout: float = attrs.field(default=5.0, converter=float, validator=_positive)
    store_pool_size: int = attrs.field(default=10, converter=int, validator=_positive)
    store_timeout: float = attrs.field(default=5.0, converter=float, validator=_positive)
    auth_cache_ttl: float = attrs.field(default=2.0, converter=float)
    inspect_concurrency: int = attrs.field(default=16, converter=int, validator=_positive)
    # Outbound policy: CIDR lists, comma-separated; no allowed list means any network.
    allowed_networks: str | None = attrs.field(default=None, validator=_networks)
    denied_networks: str = attrs.field(default=DEFAULT_DENIED_NETWORKS, validator=_networks)
    # Connections to sources: per target at most this many, closed after this long idle (0: at
    # once, no pooling), for at most this many targets.
    source_pool_size: int = attrs.field(default=2, converter=int, validator=_positive)
    source_pool_idle_timeout: float = attrs.field(
        default=60.0, converter=float, validator=_not_negative
    )
    source_pool_targets: int = attrs.field(default=50, converter=int, validator=_positive)
    log_format: str = attrs.field(default="console", validator=_one_of("console", "json"))
    # One log line per request, and the Prometheus metrics at GET /metrics.
    access_log: bool = attrs.field(default=True, converter=_switch)
    metrics: bool = attrs.field(default=True, converter=_switch)
    # The MCP server over Streamable HTTP at /mcp (`tdb mcp` serves stdio whatever this says).
    mcp: bool = attrs.field(default=True, converter=_switch)
    # Seconds a host lookup (addresses or failure) is remembered: one lookup per burst.
    resolver_cache_ttl: float = attrs.field(default=10.0, converter=float, validator=_not_negative)
    header_timeout: float = attrs.field(default=10.0, converter=float, validator=_positive)
    body_timeout: float = attrs.field(default=30.0, converter=float, validator=_positive)
    send_timeout: float = attrs.field(default=30.0, converter=float, validator=_positive)
    max_connections: int = attrs.field(default=1000, converter=int, validator=_positive)
    # Keys: the longest lifetime a key may be given (unset: no limit), and how often the
    # last use of keys is written (at most once per key per minute in any case).
    key_max_days: int | None = attrs.field(
        default=None, converter=attrs.converters.optional(int), validator=_optional_positive
    )
    key_use_flush: float = attrs.field(default=5.0, converter=float, validator=_positive)
    # OIDC: tokens of this issuer for this audience are accepted beside tdb keys.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_jwks_ttl: float = attrs.field(default=300.0, converter=float, validator=_positive)
    oidc_algorithms: str = attrs.field(default="RS256,ES256,EdDSA", validator=_algorithms)
    oidc_scopes_claim: str = "scope"

    @property
    def oidc(self) -> bool:
        """Whether OIDC tokens are accepted: both the issuer and the audience are set (one of
        them alone is refused by `from_env`)."""
        return self.oidc_issuer is not None and self.oidc_audience is not None

    # Webhooks: `webhooks` off stops this process's sender (deliveries are still written).
    webhooks: bool = attrs.field(default=True, converter=_switch)
    webhook_timeout: float = attrs.field(default=10.0, converter=float, validator=_positive)
    webhook_retry_schedule: str = attrs.field(
        default=",".join(str(d) for d in RETRY_SCHEDULE_DEFAULT), validator=_schedule
    )
    webhook_concurrency: int = attrs.field(default=4, converter=int, validator=_positive)
    webhook_allow_http: bool = attrs.field(default=False, converter=_switch)
    # Seconds a sender holds a claimed delivery: after them, another process may send it.
    webhook_lease: float = attrs.field(default=60.0, converter=float, validator=_positive)
    # Seconds an idle sender waits before it looks for due deliveries again.
    webhook_poll: float = attrs.field(default=0.1, converter=float, validator=_positive)
    # The web UI at /ui/, and how long one of its sign-ins lasts (seconds).
    ui: bool = attrs.field(default=True, converter=_switch)
    ui_session_ttl: float = attrs.field(default=43200.0, converter=float, validator=_positive)
    # Mark the UI's cookie Secure even on plain HTTP: behind a proxy that ends TLS.
    ui_secure_cookie: bool = attrs.field(default=False, converter=_switch)
    # Watches: whether this process runs due checks, how long a claimed check is its own, how
    # many failures in a row make `source.check_failed`; the shortest interval is for tests.
    watch: bool = attrs.field(default=True, converter=_switch)
    watch_lease: float = attrs.field(default=60.0, converter=float, validator=_positive)
    watch_failures: int = attrs.field(default=3, converter=int, validator=_positive)
    watch_min_interval: int = attrs.field(default=60, converter=int, validator=_positive)

    def check_watch_lease(self) -> None:
        """Raise `ValueError` if a claimed check could outlive its lease (and so be run twice
        by a live process and another one)."""
        if self.watch and self.watch_lease < self.inspect_deadline + 1:
            raise ValueError(
                f"TDB_WATCH_LEASE ({self.watch_lease:g} s) must be at least the inspection"
                f" deadline (TDB_CONNECT_TIMEOUT + 0.75 s = {self.inspect_deadline:g} s) plus one"
                " second, or TDB_WATCH=off"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from `TDB_*` variables, then the given overrides (None means not given)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in attrs.fields(cls):
            name = f"TDB_{field.name.upper()}"
            given = environ.get(name)
            # An empty variable is one not given, but for a list that may be empty:
            # `TDB_DENIED_NETWORKS=` denies nothing.
            if given or (given == "" and field.name in _MAY_BE_EMPTY):
                values[field.name] = given
        for name, value in values.items():
            try:
                cls(**{name: value})  # type: ignore[arg-type]
            except (TypeError, ValueError) as exc:
                # Name the variable: `could not convert string to float` alone says not which.
                raise ValueError(f"TDB_{name.upper()}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        if (settings.oidc_issuer is None) != (settings.oidc_audience is None):
            raise ValueError("TDB_OIDC_ISSUER and TDB_OIDC_AUDIENCE: set both, or neither")
        settings.check_watch_lease()
        return settings

    @property
    def files_directory(self) -> Path:
        """The files root: `files_root`, else `csv_root` (its old name)."""
        return self.files_root if self.files_root is not None else self.csv_root

    @property
    def enabled_connectors(self) -> tuple[str, ...] | None:
        """The source types `connectors` names; None: every connector that loads."""
        if self.connectors is None:
            return None
        return tuple(t.strip() for t in self.connectors.split(",") if t.strip())

    @property
    def inspect_deadline(self) -> float:
        """Seconds an inspection may take: the spec's bound is an answer within the connect
        timeout plus a second, and the answer needs the rest."""
        return self.connect_timeout + 0.75

    @property
    def webhook_retry_delays(self) -> tuple[float, ...]:
        """`TDB_WEBHOOK_RETRY_SCHEDULE` as delays in seconds."""
        return parse_schedule(self.webhook_retry_schedule)

    @property
    def statement_timeout_ms(self) -> int:
        """The statement timeout as PostgreSQL's `statement_timeout` takes it."""
        return int(self.statement_timeout * 1000)

    @property
    def database_scheme(self) -> str:
        """The database URL's scheme (empty for a bare path); the container knows what it means."""
        return self.database_url.partition("://")[0] if "://" in self.database_url else ""

    def secrets(self) -> tuple[str, ...]:
        """What no log line may show: the store URL's password and the secret key."""
        found = [self.secret_key or ""]
        url = self.database_url
        if "://" in url:
            # As a URL parser reads it, and as far as its last `@` (a password may hold `/`,
            # `?` or `#` unencoded, which end the URL's user information early).
            userinfo = url.partition("://")[2].rpartition("@")[0]
            passwords = [userinfo.partition(":")[2]]
            try:
                parts = urlsplit(url)
            except ValueError:  # not a URL a parser reads (the store will say so)
                parts = None
            if parts is not None:
                passwords.append(parts.password or "")
                query = parse_qsl(parts.query, keep_blank_values=True)
                passwords += [value for name, value in query if name == "password"]
            for password in filter(None, passwords):
                found += [password, unquote(password)]
        return tuple(sorted({secret for secret in found if secret}))

    def to_env(self) -> dict[str, str]:
        """These settings as `TDB_*` variables, for worker processes."""
        env = {}
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            if isinstance(value, bool):
                env[f"TDB_{field.name.upper()}"] = "on" if value else "off"
            elif value is not None:
                env[f"TDB_{field.name.upper()}"] = str(value)
        return env
