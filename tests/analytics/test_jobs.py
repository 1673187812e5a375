from __future__ import annotations

import datetime as dt
import logging
import threading

import polars as pl
import pytest

from analytics import jobs
from analytics.spend_daily import MART
from meterline.layout import DataLayout
from tests.ledger_fixtures import sample_records, write_ledger

TODAY = dt.date(2026, 11, 14)


def test_run_once_builds_every_mart_and_counts_rows(layout: DataLayout) -> None:
    write_ledger(layout, sample_records(TODAY))

    result = jobs.run_once(layout)

    assert tuple(result) == jobs.MARTS == ("spend_daily", "spend_monthly", "latency_daily")
    for name, rows in result.items():
        assert rows == pl.read_parquet(layout.mart_file(name)).height > 0


def test_run_once_on_an_empty_data_dir(layout: DataLayout) -> None:
    assert jobs.run_once(layout) == dict.fromkeys(jobs.MARTS, 0)


def test_a_failed_run_is_logged_and_retried(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stop = threading.Event()
    calls: list[int] = []
    after: list[int] = []

    def flaky(_: DataLayout, timezone: str, **__: object) -> dict[str, int]:
        calls.append(len(calls))
        if len(calls) == 1:
            raise OSError("disk full")
        stop.set()  # the second tick succeeds; ask the loop to finish
        return {"flaky": 7}

    monkeypatch.setattr(jobs, "run_once", flaky)

    with caplog.at_level(logging.INFO, logger="analytics.jobs"):
        jobs.serve_forever(layout, interval_seconds=0, stop=stop, after=lambda: after.append(1))

    assert len(calls) == 3  # failed tick, good tick, the final run after stop
    assert after == [1, 1]  # alarms run after each good mart run only
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert failures[0].exc_info is not None and isinstance(failures[0].exc_info[1], OSError)
    assert sum("flaky=7 rows" in r.getMessage() for r in caplog.records) == 2


def test_a_failing_alarm_run_does_not_stop_the_loop(
    layout: DataLayout, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stop = threading.Event()
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        if len(calls) == 2:
            stop.set()
        raise RuntimeError("webhook config broken")

    with caplog.at_level(logging.INFO, logger="analytics.jobs"):
        jobs.serve_forever(layout, interval_seconds=0, stop=stop, after=broken)

    assert len(calls) == 3
    assert sum("alarms run failed" in r.getMessage() for r in caplog.records) == 3


def test_stop_set_before_start_still_runs_once(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def count(lay: DataLayout, timezone: str, **_: object) -> dict[str, int]:
        calls.append(timezone)
        return {}

    monkeypatch.setattr(jobs, "run_once", count)
    stop = threading.Event()
    stop.set()

    jobs.serve_forever(layout, interval_seconds=3600, stop=stop, timezone="Asia/Shanghai")

    assert calls == ["Asia/Shanghai"]


def test_stop_wakes_the_loop_and_the_final_run_sees_new_records(layout: DataLayout) -> None:
    stop = threading.Event()
    first_run_done = threading.Event()
    worker = threading.Thread(
        target=jobs.serve_forever, args=(layout, 3600.0, stop), kwargs={"after": first_run_done.set}
    )
    worker.start()
    assert first_run_done.wait(timeout=60)
    assert pl.read_parquet(layout.mart_file(MART)).height == 0

    write_ledger(layout, sample_records(TODAY, days=1))
    stop.set()
    worker.join(timeout=60)

    assert not worker.is_alive()
    assert pl.read_parquet(layout.mart_file(MART)).height > 0
