"""alarms/state.py: many processes opening one new alarm-state file at once all succeed."""

from __future__ import annotations

import multiprocessing
import sqlite3
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from alarms.state import AlarmState

PROCESSES = 8
ROUNDS = 25


def _open_each_round(root: str, rounds: int, barrier: Barrier, results: multiprocessing.Queue[str]) -> None:
    """Every round, with the other processes: open a fresh file, use it, close it."""
    for n in range(rounds):
        barrier.wait()
        try:
            state = AlarmState(Path(root) / f"round-{n}" / "alarms.sqlite")
            try:
                state.kinds("support-monthly", "2026-11")
            finally:
                state.close()
            results.put("ok")
        except Exception as exc:  # noqa: BLE001 - reported to the test, which names it
            results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_file_at_once_never_fail(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(PROCESSES)
    results: multiprocessing.Queue[str] = context.Queue()
    workers = [
        context.Process(target=_open_each_round, args=(str(tmp_path), ROUNDS, barrier, results))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in range(PROCESSES * ROUNDS)]
    for worker in workers:
        worker.join(timeout=30)

    assert [w.exitcode for w in workers] == [0] * PROCESSES
    assert [o for o in outcomes if o != "ok"] == []
    assert len(outcomes) == 200
    with sqlite3.connect(tmp_path / "round-0" / "alarms.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"alarms", "deliveries"}


def test_a_file_held_locked_longer_than_the_timeout_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "alarms.sqlite"
    AlarmState(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            AlarmState(path, timeout=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
