from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from analytics.traces.ledger import connect
from meterline.layout import DataLayout
from meterline.storage.local import LocalTarget
from tests.trace_ledger import TraceLedger, build_trace_ledger


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> TraceLedger:
    return build_trace_ledger(tmp_path_factory.mktemp("traces") / "data")


@pytest.fixture
def con(ledger: TraceLedger) -> Iterator[duckdb.DuckDBPyConnection]:
    with connect(LocalTarget(DataLayout.at(ledger.data_dir))) as connection:
        yield connection
