"""The marts over a ledger in S3 (moto in server mode over real HTTP), written by the collector's
own writer: the same numbers as the same ledger on local disk, and incremental runs that notice
new and rewritten S3 objects."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import zoneinfo
from collections import defaultdict
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from analytics import incremental, jobs, partitions
from analytics.incremental import MART_NAMES, refresh
from analytics.ledger_source import LocalLedger, TargetLedger, open_ledger
from collector.compaction import CompactionPolicy, Compactor
from collector.writer import ParquetWriter
from meterline.config import StorageConfig
from meterline.layout import USAGE_TABLE, DataLayout
from meterline.storage import LocalTarget, StorageTarget, open_target
from meterline.usage_record import UsageRecord, usage_table
from tests.analytics.ledger_gen import generated_records
from tests.aws import moto_url, s3_bucket, use_moto
from tests.ledger_fixtures import exact_usd

__all__ = ["moto_url"]  # the session-wide moto server fixture

BUCKET = "ledger"
FIRST = dt.date(2026, 11, 1)
TZ = "Asia/Shanghai"


@pytest.fixture
def s3(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    return s3_bucket(moto_url, monkeypatch, BUCKET)


def s3_target(tmp_path: Path, moto_url: str) -> StorageTarget:
    return open_target(DataLayout.at(tmp_path / "wal"), f"s3://{BUCKET}/prod", endpoint_url=moto_url)


def publish(target: StorageTarget, records: list[UsageRecord]) -> None:
    """As the collector publishes a WAL batch: one part per date partition."""
    ParquetWriter(target).write_sync(USAGE_TABLE, [r.as_row() for r in records])


def marts(layout: DataLayout) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(layout.mart_file(name)) for name in MART_NAMES}


def rebuilt_from_scratch(tmp_path: Path, target: StorageTarget) -> dict[str, pl.DataFrame]:
    fresh = DataLayout.at(tmp_path / f"fresh-{len(list(tmp_path.glob('fresh-*')))}")
    refresh(fresh, TZ, ledger=TargetLedger(target))
    return marts(fresh)


def assert_same(left: dict[str, pl.DataFrame], right: dict[str, pl.DataFrame]) -> None:
    for name in MART_NAMES:
        assert left[name].equals(right[name]), name


Spend = dict[tuple[Any, ...], tuple[int, int, int, float]]


def expected_spend(records: list[UsageRecord]) -> Spend:
    """Per local day, agent, model and provider (an agent has one team and project): requests,
    input and output tokens, and the exact cost, computed from the records themselves."""
    zone = zoneinfo.ZoneInfo(TZ)
    groups: dict[tuple[Any, ...], list[UsageRecord]] = defaultdict(list)
    for r in records:
        groups[(r.ts_start.astimezone(zone).date(), r.agent_id, r.model or r.model_requested, r.provider)].append(r)
    return {
        key: (len(g), sum(r.input_tokens for r in g), sum(r.output_tokens for r in g), exact_usd(g))
        for key, g in groups.items()
    }


def mart_spend(daily: pl.DataFrame) -> Spend:
    return {
        (row["date"], row["agent_id"], row["model"], row["provider"]): (
            row["requests"],
            row["input_tokens"],
            row["output_tokens"],
            row["cost_usd"],
        )
        for row in daily.iter_rows(named=True)
    }


def test_marts_over_s3_equal_the_same_ledger_on_local_disk_to_the_cent(tmp_path: Path, moto_url: str, s3: Any) -> None:
    records = generated_records(FIRST, 3, per_day=40)
    local = DataLayout.at(tmp_path / "local")
    publish(LocalTarget(local), records)
    target = s3_target(tmp_path, moto_url)
    publish(target, records)
    marts_dir = DataLayout.at(tmp_path / "marts")

    assert refresh(local, TZ) == refresh(marts_dir, TZ, ledger=TargetLedger(target))

    from_s3 = marts(marts_dir)
    assert_same(from_s3, marts(local))
    found = mart_spend(from_s3["spend_daily"])
    assert len(found) == from_s3["spend_daily"].height  # one mart row per key
    assert found == expected_spend(records)
    assert sum(v[0] for v in found.values()) == 120
    assert sorted(o["Key"].split("/")[2] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]) == [
        "date=2026-11-01",
        "date=2026-11-02",
        "date=2026-11-03",
    ]
    assert not (tmp_path / "marts" / USAGE_TABLE).exists()  # nothing of the ledger was copied locally


def test_an_incremental_run_after_a_new_s3_part_equals_a_full_rebuild(
    tmp_path: Path, moto_url: str, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = s3_target(tmp_path, moto_url)
    publish(target, generated_records(FIRST, 3, per_day=30))
    layout = DataLayout.at(tmp_path / "marts")
    ledger = TargetLedger(target)
    refresh(layout, TZ, ledger=ledger)
    surveyed: list[str] = []
    real = partitions.survey

    def counting(*args: Any) -> Any:
        surveyed.append(args[1])
        return real(*args)

    monkeypatch.setattr(incremental, "survey", counting)
    later = generated_records(FIRST + dt.timedelta(days=2), 2, per_day=15, seed=11, tag="late")
    publish(target, later)  # a second part in 2026-11-03 and a new partition 2026-11-04

    refresh(layout, TZ, ledger=ledger)

    assert surveyed == ["date=2026-11-03", "date=2026-11-04"]
    before = (layout.marts_dir / "_state.json").read_bytes()
    refresh(layout, TZ, ledger=ledger)  # nothing changed in S3: nothing is read or rewritten
    assert surveyed == ["date=2026-11-03", "date=2026-11-04"]
    assert (layout.marts_dir / "_state.json").read_bytes() == before
    monkeypatch.undo()
    use_moto(monkeypatch, moto_url)
    assert_same(marts(layout), rebuilt_from_scratch(tmp_path, target))
    assert int(marts(layout)["spend_daily"]["requests"].sum()) == 120


def test_an_s3_object_rewritten_under_the_same_key_is_noticed(tmp_path: Path, moto_url: str, s3: Any) -> None:
    target = s3_target(tmp_path, moto_url)
    records = generated_records(FIRST, 2, per_day=20)
    publish(target, records)
    layout = DataLayout.at(tmp_path / "marts")
    refresh(layout, TZ, ledger=TargetLedger(target))
    first_day = [r for r in records if r.date == FIRST]
    (part,) = target.partitions(USAGE_TABLE)[FIRST]
    # A rewrite (a repaired or re-priced part) under the same key: half the rows, new costs.
    repriced = [dataclasses.replace(r, cost_usd=r.cost_usd + 0.25) for r in first_day[:10]]
    pq.write_table(usage_table([r.as_row() for r in repriced]), part.path, filesystem=target.filesystem)

    refresh(layout, TZ, ledger=TargetLedger(target))

    assert_same(marts(layout), rebuilt_from_scratch(tmp_path, target))
    spent = marts(layout)["spend_daily"]
    assert int(spent["requests"].sum()) == 30
    kept = repriced + [r for r in records if r.date != FIRST]
    assert mart_spend(spent) == expected_spend(kept)


def test_open_ledger_puts_the_marts_of_an_s3_ledger_under_local_dir(tmp_path: Path) -> None:
    storage = StorageConfig(data_dir="s3://ledger/prod", local_dir=str(tmp_path / "state"))

    layout, ledger = open_ledger(storage)
    assert layout.root == (tmp_path / "state").resolve()
    assert isinstance(ledger, TargetLedger) and ledger.describe() == "s3://ledger/prod/usage"

    layout, ledger = open_ledger(storage, str(tmp_path / "elsewhere"))  # --data-dir wins
    assert layout.root == (tmp_path / "elsewhere").resolve() and isinstance(ledger, LocalLedger)
    with pytest.raises(ValueError, match="not an s3://bucket/prefix URL"):
        open_ledger(storage, "s3:///no-bucket")


def test_a_compaction_on_s3_during_a_run_starts_it_over_and_a_later_run_notices_the_merge(
    tmp_path: Path, moto_url: str, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = s3_target(tmp_path, moto_url)
    for seed in (1, 2):  # two parts in each of two partitions
        publish(target, generated_records(FIRST, 2, per_day=12, seed=seed, tag=f"s{seed}"))
    layout = DataLayout.at(tmp_path / "marts")
    ledger = TargetLedger(target)
    compactor = Compactor(target, CompactionPolicy(min_files=2), today=lambda: FIRST + dt.timedelta(days=5))
    surveyed: list[str] = []
    real = partitions.survey

    def racing(*args: Any) -> Any:
        surveyed.append(args[1])
        if len(surveyed) == 1:
            assert compactor.run().files_merged == 4  # the parts just listed are deleted from S3
        return real(*args)

    monkeypatch.setattr(incremental, "survey", racing)
    refresh(layout, TZ, ledger=ledger)

    # The first listing's parts vanished: the run started over from a fresh listing.
    assert surveyed == ["date=2026-11-01", "date=2026-11-01", "date=2026-11-02"]
    assert [len(files) for files in ledger.partitions().values()] == [1, 1]
    monkeypatch.undo()
    use_moto(monkeypatch, moto_url)
    assert_same(marts(layout), rebuilt_from_scratch(tmp_path, target))
    assert int(marts(layout)["spend_daily"]["requests"].sum()) == 48


def test_analytics_serve_builds_the_marts_from_the_s3_ledger(tmp_path: Path, moto_url: str, s3: Any) -> None:
    target = s3_target(tmp_path, moto_url)
    records = generated_records(FIRST, 2, per_day=10)
    publish(target, records)
    layout = DataLayout.at(tmp_path / "marts")
    stop = threading.Event()
    stop.set()  # one final run, then return
    after: list[int] = []

    jobs.serve_forever(layout, 60, stop, TZ, after=lambda: after.append(1), ledger=TargetLedger(target))

    assert after == [1]
    assert mart_spend(marts(layout)["spend_daily"]) == expected_spend(records)
