"""What the alarms did, read from their state (`<data_dir>/alarms.sqlite`, alarms/state.py).

Opened read-only (SQLite's `mode=ro`): the page never creates the file, takes a write lock or
changes a delivery; a missing file means no alarm has fired yet. Only the budget, period, kind,
channel name, status and counts are read: never a message body's webhook or secret (messages
hold none; channels are names).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl

ALARM_SCHEMA = pl.Schema(
    {
        "budget": pl.String(),
        "period": pl.String(),
        "kind": pl.String(),
        "created_at": pl.String(),
        "channel": pl.String(),
        "status": pl.String(),
        "attempts": pl.Int64(),
        "last_error": pl.String(),
    }
)
STATUSES = ("sent", "failed", "sending")
"""A delivery's status: delivered, failed (retried by later runs), or being sent now."""


def alarm_rows(path: Path) -> pl.DataFrame:
    """One row per alarm and channel (an alarm without channels: one row, channel null),
    oldest first."""
    if not path.exists():
        return ALARM_SCHEMA.to_frame()
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5) as db:
        rows = db.execute(
            "SELECT a.budget, a.period, a.kind, a.created_at, d.channel, d.status, d.attempts, d.last_error"
            " FROM alarms a LEFT JOIN deliveries d ON d.alarm_id = a.id ORDER BY a.id, d.channel"
        ).fetchall()
    return pl.DataFrame(rows, schema=ALARM_SCHEMA, orient="row")


def fired(rows: pl.DataFrame, budget: str, period: str) -> list[str]:
    """The kinds `budget` fired in `period` (`threshold:80`, `forecast`, ...), in order."""
    kinds = rows.filter((pl.col("budget") == budget) & (pl.col("period") == period))["kind"]
    return list(dict.fromkeys(kinds.to_list()))


def by_channel(rows: pl.DataFrame) -> pl.DataFrame:
    """Per budget, period and channel: alarms fired, delivered, failed and still sending."""
    delivered = rows.filter(pl.col("channel").is_not_null())
    return (
        delivered.group_by("budget", "period", "channel")
        .agg(
            pl.col("kind").n_unique().alias("fired"),
            *((pl.col("status") == status).sum().cast(pl.Int64).alias(status) for status in STATUSES),
        )
        .rename({"sent": "delivered"})
        .sort("budget", "period", "channel", descending=[False, True, False])
    )
