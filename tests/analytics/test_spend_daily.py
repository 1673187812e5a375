from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from analytics.jobs import run_once
from analytics.ledger import scan_usage, usage_schema
from analytics.spend_daily import (
    MART,
    SPEND_DAILY_COLUMNS,
    SPEND_DAILY_SCHEMA,
    build_spend_daily,
    read_spend_daily,
)
from meterline.layout import USAGE_TABLE, DataLayout
from meterline.usage_record import UsageRecord
from tests.ledger_fixtures import exact_usd, sample_records, write_ledger

TODAY = dt.date(2026, 11, 14)


def mart_rows(layout: DataLayout) -> list[tuple[Any, ...]]:
    return pl.read_parquet(layout.mart_file(MART)).rows()


def write_spend_daily(layout: DataLayout) -> int:
    return run_once(layout)[MART]


def test_mart_costs_are_the_exact_sums_of_the_records(layout: DataLayout) -> None:
    records = sample_records(TODAY)
    write_ledger(layout, records)
    groups: dict[tuple[Any, ...], list[UsageRecord]] = defaultdict(list)
    for r in records:
        groups[(r.date, r.agent_id, r.team, r.project, r.model or r.model_requested, r.provider)].append(r)

    mart = build_spend_daily(layout)

    assert mart.height == len(groups)
    for row in mart.iter_rows(named=True):
        group = groups[(row["date"], row["agent_id"], row["team"], row["project"], row["model"], row["provider"])]
        assert row["requests"] == len(group)
        assert row["input_tokens"] == sum(r.input_tokens for r in group)
        assert row["output_tokens"] == sum(r.output_tokens for r in group)
        assert row["cost_usd"] == exact_usd(group)
    assert mart["cost_usd"].sum() == exact_usd(records)  # to the cent and beyond


def test_mart_schema_is_the_declared_one(layout: DataLayout) -> None:
    write_ledger(layout, sample_records(TODAY, days=1))
    write_spend_daily(layout)

    written = pl.read_parquet(layout.mart_file(MART)).schema

    assert written == SPEND_DAILY_SCHEMA
    assert (
        tuple(written.names())
        == SPEND_DAILY_COLUMNS
        == (
            "date",
            "agent_id",
            "team",
            "project",
            "model",
            "provider",
            "requests",
            "errors",
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "reasoning_output_tokens",
            "cost_usd",
            "cost_saved_usd",
        )
    )


def test_model_falls_back_to_the_requested_alias(layout: DataLayout) -> None:
    failed = [r for r in sample_records(TODAY, days=1) if r.model is None]
    assert failed
    write_ledger(layout, failed)

    mart = build_spend_daily(layout)

    assert set(mart["model"]) == {r.model_requested for r in failed}
    assert mart["requests"].sum() == len(failed)


def test_a_request_in_two_parts_is_billed_once(layout: DataLayout) -> None:
    records = sample_records(TODAY, days=2)
    write_ledger(layout, records)
    once = build_spend_daily(layout)

    write_ledger(layout, [r for r in records if r.date == TODAY])  # as if mid-compaction

    assert len(list(layout.partition_dir(USAGE_TABLE, TODAY).glob("*.parquet"))) == 2
    assert build_spend_daily(layout).equals(once)


def test_rerunning_writes_the_identical_file(layout: DataLayout) -> None:
    write_ledger(layout, sample_records(TODAY))
    write_spend_daily(layout)
    first = layout.mart_file(MART).read_bytes()

    write_spend_daily(layout)

    assert layout.mart_file(MART).read_bytes() == first
    assert [p.name for p in layout.mart_file(MART).parent.iterdir()] == ["data.parquet"]  # no temp left


def test_partition_date_comes_from_the_file_column(layout: DataLayout) -> None:
    write_ledger(layout, sample_records(TODAY, days=3, per_day=2))

    frame = scan_usage(layout).collect()

    assert frame.schema == usage_schema()
    assert frame["date"].dtype == pl.Date
    assert sorted(set(frame["date"])) == [TODAY - dt.timedelta(days=n) for n in (2, 1, 0)]
    assert pq.read_schema(next(layout.usage_dir.glob("date=*/*.parquet"))).field("date").type == pa.date32()


def test_empty_ledger_gives_an_empty_mart(layout: DataLayout) -> None:
    assert scan_usage(layout).collect().schema == usage_schema()

    assert write_spend_daily(layout) == 0

    assert pl.read_parquet(layout.mart_file(MART)).schema == SPEND_DAILY_SCHEMA
    assert read_spend_daily(layout).height == 0


def test_reading_a_missing_mart_gives_no_rows(layout: DataLayout) -> None:
    frame = read_spend_daily(layout, TODAY, TODAY)

    assert frame.height == 0
    assert frame.schema == SPEND_DAILY_SCHEMA


def test_read_filters_by_inclusive_dates(layout: DataLayout) -> None:
    write_ledger(layout, sample_records(TODAY, days=5))
    write_spend_daily(layout)
    since, until = TODAY - dt.timedelta(days=3), TODAY - dt.timedelta(days=1)

    frame = read_spend_daily(layout, since, until)

    assert sorted(set(frame["date"])) == [since, since + dt.timedelta(days=1), until]
