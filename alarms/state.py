"""Alarm state in SQLite (`<data_dir>/alarms.sqlite`): each alarm is claimed once, then sent.

`UNIQUE (budget, period, kind)` is the once-only guarantee: the process whose INSERT lands
owns the alarm and sends it; any other process (or a later run) sees the row and sends nothing.
Each (alarm, channel) delivery is recorded, so failures are visible and retried by later runs.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from alarms.message import Message
from meterline.layout import DataLayout

MAX_RUNS_PER_DELIVERY = 10
"""A failed delivery is retried by later runs until it has failed this many runs."""
OPEN_TIMEOUT_SECONDS = 30.0
"""How long opening the state waits for other processes opening or writing it at the same time."""

_T = TypeVar("_T")

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY,
    budget TEXT NOT NULL,
    period TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (budget, period, kind)
)""",
    """
CREATE TABLE IF NOT EXISTS deliveries (
    alarm_id INTEGER NOT NULL REFERENCES alarms (id),
    channel TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    runs INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (alarm_id, channel)
)""",
)


def state_file(layout: DataLayout) -> Path:
    return layout.root / "alarms.sqlite"


@dataclass(frozen=True)
class Delivery:
    alarm_id: int
    budget: str
    period: str
    kind: str
    channel: str
    status: str
    runs: int
    attempts: int
    last_error: str | None
    updated_at: str


class AlarmState:
    def __init__(self, path: Path, timeout: float = OPEN_TIMEOUT_SECONDS) -> None:
        """Open (creating it if need be) the state at `path`. Any number of processes may open
        a new file at once: switching to WAL takes an exclusive lock, and SQLite answers a
        connection that would deadlock waiting for it with SQLITE_BUSY at once, whatever the
        busy timeout, so both the switch and the schema are retried until `timeout`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            deadline = time.monotonic() + timeout
            _retry_busy(lambda: self._db.execute("PRAGMA journal_mode=WAL").fetchall(), deadline)
            _retry_busy(self._create_schema, deadline)
        except BaseException:
            self._db.close()
            raise

    def _create_schema(self) -> None:
        with self._transaction():
            for statement in _SCHEMA:
                self._db.execute(statement)

    def close(self) -> None:
        self._db.close()

    def claim(self, budget: str, period: str, kind: str, message: Message, channels: list[str]) -> int | None:
        """Record the alarm and its pending deliveries; None when it was already claimed."""
        now = _now()
        with self._transaction():
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO alarms (budget, period, kind, message, created_at) VALUES (?, ?, ?, ?, ?)",
                (budget, period, kind, message.to_json(), now),
            )
            if cursor.rowcount != 1:
                return None
            alarm_id = cursor.lastrowid
            assert alarm_id is not None
            self._db.executemany(
                "INSERT INTO deliveries (alarm_id, channel, status, updated_at) VALUES (?, ?, 'sending', ?)",
                [(alarm_id, channel, now) for channel in channels],
            )
        return alarm_id

    def record(self, alarm_id: int, channel: str, error: str | None, attempts: int) -> None:
        self._db.execute(
            "UPDATE deliveries SET status = ?, last_error = ?, attempts = attempts + ?, runs = runs + 1,"
            " updated_at = ? WHERE alarm_id = ? AND channel = ?",
            ("failed" if error else "sent", error, attempts, _now(), alarm_id, channel),
        )

    def claim_retries(self) -> list[tuple[int, str, Message]]:
        """Failed deliveries this process now owns (status flipped back to `sending`)."""
        rows = self._db.execute(
            "SELECT d.alarm_id, d.channel, a.message FROM deliveries d JOIN alarms a ON a.id = d.alarm_id"
            " WHERE d.status = 'failed' AND d.runs < ? ORDER BY d.alarm_id, d.channel",
            (MAX_RUNS_PER_DELIVERY,),
        ).fetchall()
        owned: list[tuple[int, str, Message]] = []
        for alarm_id, channel, message in rows:
            cursor = self._db.execute(
                "UPDATE deliveries SET status = 'sending' WHERE alarm_id = ? AND channel = ? AND status = 'failed'",
                (alarm_id, channel),
            )
            if cursor.rowcount == 1:
                owned.append((alarm_id, channel, Message.from_json(message)))
        return owned

    def unresolved_periods(self, budget: str, current: str) -> list[str]:
        """Earlier periods of `budget` that raised an alarm and have not been resolved yet."""
        rows = self._db.execute(
            "SELECT DISTINCT period FROM alarms WHERE budget = ? AND period <> ? AND kind <> 'resolved'"
            " AND period NOT IN (SELECT period FROM alarms WHERE budget = ? AND kind = 'resolved') ORDER BY period",
            (budget, current, budget),
        ).fetchall()
        return [period for (period,) in rows]

    def kinds(self, budget: str, period: str) -> set[str]:
        rows = self._db.execute("SELECT kind FROM alarms WHERE budget = ? AND period = ?", (budget, period))
        return {kind for (kind,) in rows}

    def deliveries(self) -> list[Delivery]:
        rows = self._db.execute(
            "SELECT a.id, a.budget, a.period, a.kind, d.channel, d.status, d.runs, d.attempts, d.last_error,"
            " d.updated_at FROM deliveries d JOIN alarms a ON a.id = d.alarm_id ORDER BY a.id, d.channel"
        ).fetchall()
        return [Delivery(*row) for row in rows]

    def _transaction(self) -> _Immediate:
        return _Immediate(self._db)


class _Immediate:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): the claim and its deliveries land together."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "database is locked" in text or "database is busy" in text


def _retry_busy(work: Callable[[], _T], deadline: float) -> _T:
    """`work()`, again after a short pause while SQLite answers SQLITE_BUSY, until `deadline`."""
    pause = 0.005
    while True:
        try:
            return work()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
