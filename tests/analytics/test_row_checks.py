"""analytics/row_checks.py: an invalid row already in the ledger never stops the marts; it is
left out of them, quarantined with its reasons and logged, and incremental runs stay exact."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics.incremental import MART_NAMES, refresh
from analytics.spend_daily import MART, build_spend_daily, read_spend_daily
from analytics.usd import sum_usd
from meterline.layout import DataLayout
from meterline.quarantine import QUARANTINE_TABLE
from meterline.usage_record import UsageRecord
from tests.ledger_fixtures import exact_usd, sample_records, write_ledger

TODAY = dt.date(2026, 11, 20)


def poison(records: list[UsageRecord]) -> list[UsageRecord]:
    """Copies of four records with what issue 12 found on disk (and a hand edit), new ids."""
    day = [r for r in records if r.date == TODAY and r.model is not None]
    nan, negative, infinite, moved = (dataclasses.replace(r, request_id=f"bad-{i}") for i, r in enumerate(day[:4]))
    return [
        dataclasses.replace(nan, cost_usd=math.nan),
        dataclasses.replace(negative, output_tokens=-40, cost_usd=-0.5),
        dataclasses.replace(infinite, cost_usd=math.inf, latency_ms=math.inf),
        dataclasses.replace(moved, date=TODAY - dt.timedelta(days=1)),
    ]


def quarantined(layout: DataLayout) -> pl.DataFrame:
    files = sorted(layout.table_dir(QUARANTINE_TABLE).glob("date=*/*.parquet"))
    frame = pl.DataFrame(pa.concat_tables([pq.read_table(f) for f in files]))
    return frame.sort("request_id")


def mart_bytes(layout: DataLayout) -> dict[str, bytes]:
    return {name: layout.mart_file(name).read_bytes() for name in MART_NAMES}


def test_bad_rows_are_left_out_quarantined_and_logged(
    layout: DataLayout, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = sample_records(TODAY, days=3)
    write_ledger(layout, good)
    write_ledger(layout, poison(good))  # a second part, as an older collector would have added

    with caplog.at_level(logging.WARNING, logger="analytics.row_checks"):
        rows = refresh(layout, "UTC")

    daily = read_spend_daily(layout)
    assert daily.get_column("requests").sum() == len(good) == 72
    assert daily.select(sum_usd("cost_usd")).item() == exact_usd(good) == 0.14408455
    assert daily.get_column("output_tokens").sum() == sum(r.output_tokens for r in good)
    assert rows[MART] == daily.height
    assert daily.equals(build_spend_daily(layout, "UTC"))

    bad = quarantined(layout)
    assert bad.select("request_id", "reasons", "source").rows() == [
        ("bad-0", ["cost_usd.not_finite"], "analytics"),
        ("bad-1", ["cost_usd.negative", "output_tokens.negative"], "analytics"),
        ("bad-2", ["cost_usd.not_finite", "latency_ms.not_finite"], "analytics"),
        ("bad-3", ["date.mismatch"], "analytics"),
    ]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2  # one per part holding bad rows (the moved row sits in yesterday's folder)
    assert any("3 invalid ledger row(s)" in w and "cost_usd.not_finite x2" in w for w in warnings)


def test_incremental_runs_with_bad_rows_equal_a_full_rebuild_byte_for_byte(layout: DataLayout, tmp_path: Path) -> None:
    good = sample_records(TODAY, days=3)
    write_ledger(layout, good[:40])
    refresh(layout, "Asia/Shanghai")
    write_ledger(layout, poison(good))
    refresh(layout, "Asia/Shanghai")
    write_ledger(layout, good[40:])
    refresh(layout, "Asia/Shanghai")

    fresh = DataLayout.at(tmp_path / "fresh")
    shutil.copytree(layout.usage_dir, fresh.usage_dir)
    refresh(fresh, "Asia/Shanghai")
    assert mart_bytes(layout) == mart_bytes(fresh)
    assert read_spend_daily(layout).get_column("requests").sum() == len(good)


def test_a_run_again_over_the_same_bad_rows_keeps_one_copy_each(layout: DataLayout) -> None:
    good = sample_records(TODAY, days=1)
    write_ledger(layout, [*good, *poison(good)[:2]])
    refresh(layout, "UTC")
    (layout.marts_dir / "_state.json").unlink()  # forces a full rebuild, which surveys again
    refresh(layout, "UTC")

    assert quarantined(layout).get_column("request_id").to_list() == ["bad-0", "bad-1"]
