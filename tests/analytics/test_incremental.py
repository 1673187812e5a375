"""An incremental run gives byte for byte what a full rebuild gives, and re-running changes nothing."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from analytics import incremental, partitions
from analytics.incremental import MART_NAMES, refresh
from analytics.mart_state import list_partitions, load_state, state_path
from collector.compaction import CompactionPolicy, Compactor
from meterline.layout import USAGE_TABLE, DataLayout
from meterline.storage.local import LocalTarget
from tests.analytics.ledger_gen import generated_records
from tests.ledger_fixtures import write_ledger

FIRST = dt.date(2026, 11, 1)
TZ = "Asia/Shanghai"


def mart_bytes(layout: DataLayout) -> dict[str, bytes]:
    return {name: layout.mart_file(name).read_bytes() for name in MART_NAMES}


def full_rebuild(layout: DataLayout, tmp_path: Path) -> dict[str, bytes]:
    """The same ledger copied to a fresh data dir, built from nothing."""
    fresh = DataLayout.at(tmp_path / "fresh")
    shutil.rmtree(fresh.root, ignore_errors=True)
    shutil.copytree(layout.usage_dir, fresh.usage_dir)
    refresh(fresh, TZ)
    return mart_bytes(fresh)


@pytest.fixture
def built(layout: DataLayout) -> DataLayout:
    write_ledger(layout, generated_records(FIRST, 5, per_day=40))
    refresh(layout, TZ)
    return layout


def test_adding_a_day_rebuilds_only_its_local_days(built: DataLayout, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    write_ledger(built, generated_records(FIRST + dt.timedelta(days=5), 1, per_day=40, seed=99))

    refresh(built, TZ, progress=lambda done, total: seen.append((done, total)))

    assert seen == [(1, 2), (2, 2)]  # UTC 6 Nov feeds Shanghai's 6 and 7 Nov, nothing else
    assert mart_bytes(built) == full_rebuild(built, tmp_path)


def test_rewriting_a_partition_matches_a_full_rebuild(built: DataLayout, tmp_path: Path) -> None:
    day = FIRST + dt.timedelta(days=2)
    for part in built.partition_dir(USAGE_TABLE, day).glob("*.parquet"):
        part.unlink()
    write_ledger(built, generated_records(day, 1, per_day=15, seed=5, tag="rewritten"))

    refresh(built, TZ)

    assert mart_bytes(built) == full_rebuild(built, tmp_path)


def test_removing_a_partition_removes_its_days(built: DataLayout, tmp_path: Path) -> None:
    shutil.rmtree(built.partition_dir(USAGE_TABLE, FIRST))

    refresh(built, TZ)

    assert mart_bytes(built) == full_rebuild(built, tmp_path)


def test_a_second_run_changes_nothing(built: DataLayout) -> None:
    before = mart_bytes(built)
    stamps = {name: built.mart_file(name).stat().st_mtime_ns for name in MART_NAMES}
    state = state_path(built).read_bytes()
    seen: list[tuple[int, int]] = []

    counts = refresh(built, TZ, progress=lambda done, total: seen.append((done, total)))

    assert seen == []
    assert mart_bytes(built) == before
    assert {name: built.mart_file(name).stat().st_mtime_ns for name in MART_NAMES} == stamps
    assert state_path(built).read_bytes() == state
    assert counts["spend_daily"] > 0


def test_a_new_time_zone_rebuilds_everything(built: DataLayout, tmp_path: Path) -> None:
    refresh(built, "UTC")

    state = load_state(built)
    assert state is not None and state.timezone == "UTC"
    utc = DataLayout.at(tmp_path / "utc")
    shutil.copytree(built.usage_dir, utc.usage_dir)
    refresh(utc, "UTC")
    assert mart_bytes(built) == mart_bytes(utc)


def test_state_records_partition_files_and_local_days(built: DataLayout) -> None:
    state = load_state(built)

    assert state is not None
    first = state.partitions[f"date={FIRST.isoformat()}"]
    assert len(first.files) == 1
    assert first.days == [FIRST.isoformat(), (FIRST + dt.timedelta(days=1)).isoformat()]


def compactor(layout: DataLayout, retention_days: int = 400) -> Compactor:
    policy = CompactionPolicy(min_files=2, retention_days=retention_days)
    return Compactor(LocalTarget(layout), policy, today=lambda: FIRST + dt.timedelta(days=5))


def test_compaction_rewriting_a_partition_is_noticed_and_changes_no_number(built: DataLayout, tmp_path: Path) -> None:
    day = FIRST + dt.timedelta(days=3)
    for n in range(3):  # three more small parts, as the collector publishes them
        write_ledger(built, generated_records(day, 1, per_day=10, seed=20 + n, tag=f"late{n}"))
    refresh(built, TZ)
    before = mart_bytes(built)
    folder = built.partition_dir(USAGE_TABLE, day)
    assert len(list(folder.glob("*.parquet"))) == 4

    report = compactor(built).run()
    seen: list[tuple[int, int]] = []
    refresh(built, TZ, progress=lambda done, total: seen.append((done, total)))

    assert report.partitions_compacted == 1 and len(list(folder.glob("*.parquet"))) == 1
    assert seen == [(1, 2), (2, 2)]  # same rows, new file set: its two local days were rebuilt
    state = load_state(built)
    assert state is not None and set(state.partitions[folder.name].files) == {p.name for p in folder.glob("*.parquet")}
    assert mart_bytes(built) == before == full_rebuild(built, tmp_path)


def test_retention_dropping_old_partitions_matches_a_full_rebuild(built: DataLayout, tmp_path: Path) -> None:
    report = compactor(built, retention_days=3).run()  # today is FIRST + 5: FIRST and FIRST + 1 go

    refresh(built, TZ)

    assert report.partitions_dropped == [
        f"usage/{FIRST.isoformat()}",
        f"usage/{(FIRST + dt.timedelta(days=1)).isoformat()}",
    ]
    assert mart_bytes(built) == full_rebuild(built, tmp_path)
    days = set(pl.read_parquet(built.mart_file("spend_daily"))["date"])
    # Shanghai's FIRST + 2 is part UTC FIRST + 1 (dropped), part FIRST + 2 (kept): it stays, smaller.
    assert min(days) == FIRST + dt.timedelta(days=2)


def test_a_part_replaced_under_its_name_with_the_same_size_and_mtime_is_a_new_file_set(layout: DataLayout) -> None:
    folder = layout.partition_dir(USAGE_TABLE, FIRST)
    folder.mkdir(parents=True)
    part = folder / "part-a.parquet"
    part.write_bytes(b"A" * 64)
    before = list_partitions(layout)
    stat = part.stat()
    temp = folder / ".part-a.parquet.tmp"
    temp.write_bytes(b"B" * 64)  # same size, other content
    os.utime(temp, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(temp, part)  # how every writer publishes

    after = list_partitions(layout)

    assert part.stat().st_size == stat.st_size and part.stat().st_mtime_ns == stat.st_mtime_ns
    assert after != before


def test_a_part_vanishing_mid_run_starts_the_run_over(
    layout: DataLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_ledger(layout, generated_records(FIRST, 2, per_day=20))
    calls: list[str] = []
    real = partitions.survey

    def racing(*args: Any) -> Any:
        calls.append(args[1])
        if len(calls) == 1:
            raise FileNotFoundError("No such file or directory (os error 2): part swapped by compaction")
        return real(*args)

    monkeypatch.setattr(incremental, "survey", racing)

    refresh(layout, TZ)

    assert calls[0] == calls[1]  # the first partition surveyed again, from a fresh listing
    assert mart_bytes(layout) == full_rebuild(layout, tmp_path)


def test_a_request_in_two_parts_of_a_partition_is_counted_once(layout: DataLayout, tmp_path: Path) -> None:
    records = generated_records(FIRST, 2, per_day=30)
    write_ledger(layout, records)
    refresh(layout, TZ)
    once = mart_bytes(layout)
    day = [r for r in records if r.date == FIRST]
    write_ledger(layout, day[:10])  # copies, as a crash between merge and delete could leave them

    refresh(layout, TZ)

    state = load_state(layout)
    assert state is not None
    assert not state.partitions[f"date={FIRST.isoformat()}"].unique
    assert state.partitions[f"date={(FIRST + dt.timedelta(days=1)).isoformat()}"].unique
    assert mart_bytes(layout) == once


def test_a_partition_of_several_distinct_parts_is_read_without_de_duplication(layout: DataLayout) -> None:
    write_ledger(layout, generated_records(FIRST, 1, per_day=30))
    write_ledger(layout, generated_records(FIRST, 1, per_day=30, seed=8, tag="b"))

    refresh(layout, TZ)

    state = load_state(layout)
    assert state is not None
    part = state.partitions[f"date={FIRST.isoformat()}"]
    assert (len(part.files), part.unique) == (2, True)
    assert pl.read_parquet(layout.mart_file("spend_daily"))["requests"].sum() == 60
