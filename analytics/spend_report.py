"""`meterline spend`: spend over a date window grouped by agent, team or model, as text.

Reads the `spend_daily` mart, never the raw ledger, so the report shows the numbers the
dashboard and finance see; a ledger newer than the last mart run is not in it yet.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from typing import Any, Literal

import polars as pl

from analytics.spend_daily import read_spend_daily
from analytics.usd import sum_usd
from meterline.layout import DataLayout

GroupBy = Literal["agent", "team", "project", "model"]
Format = Literal["table", "json", "csv"]

_SOURCE_COLUMN: dict[str, str] = {"agent": "agent_id", "team": "team", "project": "project", "model": "model"}
OTHERS = "(others)"
"""The row that sums everyone below `--top N`."""
_MEASURES = ("requests", "input_tokens", "output_tokens", "cost_usd")
_RELATIVE = re.compile(r"^(\d+)([dh])$")


def spend_report(
    layout: DataLayout, by: GroupBy, since: dt.date, until: dt.date | None = None, top: int | None = None
) -> pl.DataFrame:
    """One row per `by` value over `since <= date <= until`, most expensive first; with `top`,
    the `top` biggest and one `(others)` row summing the rest, so the total is unchanged."""
    daily = read_spend_daily(layout, since, until)
    report = (
        daily.lazy()
        .group_by(pl.col(_SOURCE_COLUMN[by]).alias(by))
        .agg(
            pl.col("requests").sum(),
            pl.col("input_tokens").sum(),
            pl.col("output_tokens").sum(),
            sum_usd("cost_usd"),
        )
        # The name breaks ties so equal spenders always print in the same order.
        .sort(["cost_usd", by], descending=[True, False], nulls_last=True)
        .collect()
    )
    if top is None or report.height <= top:
        return report
    rest = report.slice(top).select(
        pl.lit(OTHERS).alias(by),
        pl.col("requests").sum(),
        pl.col("input_tokens").sum(),
        pl.col("output_tokens").sum(),
        sum_usd("cost_usd"),
    )
    return pl.concat([report.head(top), rest.cast(report.schema)])


def parse_since(value: str, today: dt.date) -> dt.date:
    """`7d` (today minus 7 days), `24h`, or an ISO date. The mart is daily, so hours round up
    to whole days: `24h` and `12h` both start yesterday and so include every hour asked for."""
    match = _RELATIVE.match(value.strip())
    if match is not None:
        amount, unit = int(match.group(1)), match.group(2)
        days = amount if unit == "d" else -(-amount // 24)
        return today - dt.timedelta(days=days)
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"--since {value!r}: expected a number of days or hours (7d, 24h) or a date (2026-11-01)"
        ) from None


def render(df: pl.DataFrame, fmt: Format, *, since: dt.date | None = None, until: dt.date | None = None) -> str:
    """A `spend_report` frame as an aligned table with a TOTAL row, JSON, or CSV.

    JSON and CSV carry the numbers exactly (floats as their shortest round-tripping form);
    only the table rounds dollars, to 6 decimals. No trailing newline: callers `print` it.
    """
    by = df.columns[0]
    rows = df.rows(named=True)
    total = _total(df)
    if fmt == "json":
        document = {
            "by": by,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "rows": rows,
            "total": total,
        }
        return json.dumps(document, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(df.columns)
        # csv writes a float with str(), which is its shortest exact (round-tripping) form.
        writer.writerows(row.values() for row in rows)
        return buffer.getvalue().rstrip("\n")
    return _table(by, rows, total)


def _total(df: pl.DataFrame) -> dict[str, Any]:
    sums = df.select(
        pl.col("requests").sum(),
        pl.col("input_tokens").sum(),
        pl.col("output_tokens").sum(),
        sum_usd("cost_usd"),
    )
    return {name: sums.item(0, name) for name in _MEASURES}


def _cells(label: str, values: dict[str, Any]) -> list[str]:
    return [
        label,
        f"{values['requests']:,}",
        f"{values['input_tokens']:,}",
        f"{values['output_tokens']:,}",
        f"{values['cost_usd']:,.6f}",
    ]


def _table(by: str, rows: list[dict[str, Any]], total: dict[str, Any]) -> str:
    header = [by, *_MEASURES]
    body = [_cells(str(row[by]), row) for row in rows]
    footer = _cells("TOTAL", total)
    widths = [max(len(line[i]) for line in [header, *body, footer]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))])

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(cells) for cells in body), rule, line(footer)])
