"""The catalog of connectors: one connector per source type, unknown types named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.connectors.csv import CsvConnector
from adapters.connectors.postgres import PostgresConnector
from adapters.connectors.registry import StaticConnectorRegistry
from application.ports import ConnectorRegistry
from domain.errors import UnknownSourceType


@pytest.fixture
def catalog(tmp_path: Path) -> ConnectorRegistry:
    return StaticConnectorRegistry([PostgresConnector(), CsvConnector(tmp_path)])


def test_the_catalog_lists_its_types_sorted_and_hands_out_each_connector(
    catalog: ConnectorRegistry,
) -> None:
    assert list(catalog.types()) == ["csv", "postgres"]
    for source_type in catalog.types():
        assert catalog.get(source_type).source_type == source_type


@pytest.mark.parametrize("source_type", ["oracle", "", "CSV", None, ["csv"]])
def test_an_unknown_type_names_the_available_ones(
    catalog: ConnectorRegistry, source_type: Any
) -> None:
    with pytest.raises(UnknownSourceType) as caught:
        catalog.get(source_type)
    assert caught.value.available == ("csv", "postgres")


def test_two_connectors_of_one_type_are_a_wiring_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="csv"):
        StaticConnectorRegistry([CsvConnector(tmp_path), CsvConnector(tmp_path / "other")])
