"""Every mart equals DuckDB's computation over the raw ledger, in UTC and in Asia/Shanghai."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest

from analytics.jobs import run_once
from analytics.latency_daily import MART as LATENCY
from analytics.spend_daily import MART as DAILY
from analytics.spend_monthly import MART as MONTHLY
from meterline.layout import DataLayout
from tests.analytics.ledger_gen import generated_records
from tests.analytics.reference import LATENCY_DAILY, SPEND_DAILY, SPEND_MONTHLY, reference
from tests.ledger_fixtures import write_ledger

FIRST = dt.date(2026, 10, 27)  # across a month end, so months differ by time zone too
DAYS = 8


def keyed(layout: DataLayout, mart: str, width: int) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {row[:width]: row[width:] for row in pl.read_parquet(layout.mart_file(mart)).rows()}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> DataLayout:
    layout = DataLayout.at(tmp_path_factory.mktemp("marts") / "data")
    write_ledger(layout, generated_records(FIRST, DAYS))
    return layout


@pytest.mark.parametrize("timezone", ["UTC", "Asia/Shanghai", "America/Los_Angeles"])
def test_spend_marts_equal_duckdb_to_the_cent(ledger: DataLayout, timezone: str) -> None:
    run_once(ledger, timezone)

    for mart, sql in ((DAILY, SPEND_DAILY), (MONTHLY, SPEND_MONTHLY)):
        ours, theirs = keyed(ledger, mart, 6), reference(ledger, sql, timezone)
        assert ours.keys() == theirs.keys()
        for key, expected in theirs.items():
            got = ours[key]
            assert got[:6] == expected[:6], key  # requests, errors and tokens exactly
            assert round(got[6], 2) == round(expected[6], 2) and abs(got[6] - expected[6]) < 1e-9
            assert abs(got[7] - expected[7]) < 1e-9
    daily = pl.read_parquet(ledger.mart_file(DAILY))
    assert daily["date"].n_unique() == (DAYS if timezone == "UTC" else DAYS + 1)


@pytest.mark.parametrize("timezone", ["UTC", "Asia/Shanghai"])
def test_latency_quantiles_equal_duckdb(ledger: DataLayout, timezone: str) -> None:
    run_once(ledger, timezone)

    ours, theirs = keyed(ledger, LATENCY, 2), reference(ledger, LATENCY_DAILY, timezone)

    assert ours.keys() == theirs.keys()
    for key, expected in theirs.items():
        got = ours[key]
        assert (got[0], got[4]) == (expected[0], expected[4])
        for a, b in zip(got, expected, strict=True):
            assert (a is None and b is None) or math.isclose(a, b, rel_tol=1e-12), key


def test_a_late_evening_request_in_utc_belongs_to_the_next_day_in_shanghai(layout: DataLayout) -> None:
    record = generated_records(dt.date(2026, 11, 30), 1, per_day=1)[0]
    record.ts_start = dt.datetime(2026, 11, 30, 17, 30, tzinfo=dt.UTC)  # 01:30 on 1 Dec in Shanghai
    write_ledger(layout, [record])

    run_once(layout, "Asia/Shanghai")

    assert pl.read_parquet(layout.mart_file(DAILY))["date"].to_list() == [dt.date(2026, 12, 1)]
    assert pl.read_parquet(layout.mart_file(MONTHLY))["month"].to_list() == [dt.date(2026, 12, 1)]
