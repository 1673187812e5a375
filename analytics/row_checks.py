"""Ledger rows the marts can sum: a row already on disk that breaks a rule (written before the
collector validated records, or edited by hand) is left out of every mart, alarm and `spend`,
copied to the quarantine with its reasons, and logged; it never stops a run.

The rules are the collector's (collector/validation.py) where they apply to a stored row and
do not depend on when it is read: money finite, non-negative and below `MAX_USD`; tokens
non-negative and below `MAX_TOKENS`; latencies finite and non-negative; a request id and a start
time present; `date` the UTC date of `ts_start`. Fixed bounds, not the configured limits, so a
mart built today equals one rebuilt next year from the same files (analytics/incremental.py's
promise), and no configured limit can exceed them (meterline/record_limits.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter

import polars as pl
import pyarrow as pa

from meterline.quarantine import quarantine_table, write_quarantine
from meterline.record_limits import HARD_MAX_TOKENS, HARD_MAX_USD
from meterline.storage.base import StorageTarget

log = logging.getLogger(__name__)

MAX_USD = HARD_MAX_USD
MAX_TOKENS = HARD_MAX_TOKENS
_MONEY = ("cost_usd", "cost_saved_usd")
_TOKENS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_output_tokens",
)
_LATENCIES = ("latency_ms", "ttft_ms")


def _rules() -> list[tuple[str, pl.Expr]]:
    """(rule code, expression true for a row that breaks it); a null value breaks nothing here
    except where the column is the row's identity."""
    rules: list[tuple[str, pl.Expr]] = [
        ("request_id.missing", pl.col("request_id").is_null()),
        ("ts_start.missing", pl.col("ts_start").is_null()),
        ("date.mismatch", pl.col("date") != pl.col("ts_start").dt.convert_time_zone("UTC").dt.date()),
    ]
    for name in (*_MONEY, *_LATENCIES):
        column = pl.col(name)
        finite = column.is_finite()  # a value that is not is judged once, as not finite
        rules.append((f"{name}.not_finite", ~finite))
        rules.append((f"{name}.negative", finite & (column < 0)))
        if name in _MONEY:
            rules.append((f"{name}.too_large", finite & (column > MAX_USD)))
    for name in _TOKENS:
        rules.append((f"{name}.negative", pl.col(name) < 0))
        rules.append((f"{name}.too_large", pl.col(name) > MAX_TOKENS))
    return [(code, expr.fill_null(False)) for code, expr in rules]


def valid() -> pl.Expr:
    """True for a row the marts may sum."""
    return ~pl.any_horizontal([expr for _, expr in _rules()])


def reasons() -> pl.Expr:
    """The codes of the rules a row breaks (empty for a valid row)."""
    return pl.concat_list([pl.when(expr).then(pl.lit(code)) for code, expr in _rules()]).list.drop_nulls()


def set_aside(rows: pl.LazyFrame, where: str, quarantine: StorageTarget | None) -> int:
    """Copy the invalid rows of `rows` (one ledger part) to the quarantine and log them; returns
    how many there were. Marts leave them out through `valid()` whatever happens here; a
    quarantine that cannot be written is logged, never raised."""
    bad = rows.filter(~valid()).with_columns(reasons().alias("_reasons")).collect()
    if bad.height == 0:
        return 0
    codes: list[list[str]] = bad.get_column("_reasons").to_list()
    count = Counter(code for row in codes for code in row)
    log.warning(
        "analytics: %d invalid ledger row(s) in %s left out of the marts and quarantined: %s",
        bad.height,
        where,
        ", ".join(f"{code} x{n}" for code, n in sorted(count.items())),
    )
    if quarantine is None:
        return bad.height
    data = bad.drop("_reasons").to_arrow()
    details = [f"stored row in {where}: " + ", ".join(row) for row in codes]
    try:
        table = quarantine_table(data, codes, details, "analytics", dt.datetime.now(dt.UTC))
        write_quarantine(quarantine, table, salt=where)
    except (OSError, pa.ArrowException, ValueError) as exc:
        log.warning("analytics: could not write the quarantine for %s: %s", where, exc)
    return bad.height
