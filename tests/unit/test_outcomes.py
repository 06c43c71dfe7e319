"""The runtime's outcome table names every domain error, and each outcome is a whole answer."""

from __future__ import annotations

import inspect

import pytest

from domain import errors
from domain.errors import DomainError
from entrypoints.runtime.outcomes import Exit, kinds, outcome_of

DOMAIN_ERRORS = sorted(
    (
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, DomainError) and cls is not DomainError
    ),
    key=lambda cls: cls.__name__,
)


def test_the_module_has_errors_to_check() -> None:
    assert len(DOMAIN_ERRORS) >= 14


@pytest.mark.parametrize("kind", DOMAIN_ERRORS, ids=lambda cls: cls.__name__)
def test_every_domain_error_has_an_outcome_of_its_own(kind: type[DomainError]) -> None:
    # Named in the table itself: a new error does not inherit a meaning it was not given.
    assert kind in kinds(), f"{kind.__name__} has no outcome in entrypoints/runtime/outcomes.py"


class Unforeseen(DomainError):
    """An error nobody gave an outcome."""


def test_an_error_without_an_outcome_is_refused_not_guessed() -> None:
    with pytest.raises(LookupError, match="Unforeseen"):
        outcome_of(Unforeseen())


def test_exit_statuses_keep_usage_and_serve_and_tell_failures_apart() -> None:
    assert (Exit.OK, Exit.INVALID, Exit.USAGE, Exit.NOT_STARTED) == (0, 1, 2, 3)
    assert len(set(Exit)) == len(Exit.__members__)
    statuses = {
        outcome_of(e).exit_status
        for e in (
            errors.SourceNotFound("x"),
            errors.BackendUnavailable("timeout"),
            errors.StoreUnavailable(),
            errors.PermissionDenied("sources:write"),
            errors.DuplicateSourceName("x"),
            errors.InvalidInput.single("name", "is required"),
            errors.SecretUnreadable(),
        )
    }
    assert len(statuses) == 7
    assert Exit.USAGE not in statuses
    assert Exit.NOT_STARTED not in statuses


def test_an_outcome_is_a_problem_document() -> None:
    outcome = outcome_of(errors.BackendUnavailable("busy", "too many at once"))
    problem = outcome.problem("req-1")
    assert (problem.type, problem.title, problem.status) == (
        "urn:tdb:problem:backend-unavailable",
        "Service Unavailable",
        503,
    )
    assert (problem.reason, problem.detail, problem.request_id) == (
        "busy",
        "too many at once",
        "req-1",
    )
    assert outcome.retry_after == 1
    assert outcome_of(errors.BackendUnavailable("timeout")).retry_after is None
