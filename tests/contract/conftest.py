"""Fixtures of the contract suite: a factory of fresh stores for each adapter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.stores import ADAPTERS, FACTORIES, StoreFactory


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> str:
    """The storage adapter under test (tests may narrow it with their own parametrize)."""
    name: str = request.param
    return name


@pytest.fixture
def new_stores(
    adapter: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[StoreFactory]:
    """A factory of fresh stores: call it once per test or per hypothesis example."""
    yield from FACTORIES[adapter].opened(request, tmp_path)
