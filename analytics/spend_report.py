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
from decimal import Decimal
from typing import Any, Literal

import polars as pl

from analytics.spend_daily import read_spend_daily
from analytics.usd import USD_SCALE, sum_usd
from meterline.layout import DataLayout

GroupBy = Literal["agent", "team", "project", "model"]
Format = Literal["table", "json", "csv"]

_SOURCE_COLUMN: dict[str, str] = {"agent": "agent_id", "team": "team", "project": "project", "model": "model"}
OTHERS = "(others)"
"""The row that sums everyone below `--top N`."""
UNANSWERED = "(refused/failed)"
"""`--by model`'s row for requests no model answered (refused by the gateway or failed before a
provider took them): the alias they asked for is not a model, and may not even exist. The mart
marks them with no provider, as the dashboard's `answered` rule reads them."""
_MEASURES = ("requests", "input_tokens", "output_tokens", "cost_usd")
_RELATIVE = re.compile(r"^(\d+)([dh])$")


def spend_report(
    layout: DataLayout, by: GroupBy, since: dt.date, until: dt.date | None = None, top: int | None = None
) -> pl.DataFrame:
    """One row per `by` value over `since <= date <= until`, most expensive first; with `top`,
    the `top` biggest and one `(others)` row summing the rest, so the total is unchanged."""
    daily = read_spend_daily(layout, since, until)
    key = pl.col(_SOURCE_COLUMN[by])
    if by == "model":
        key = pl.when(pl.col("provider").is_null()).then(pl.lit(UNANSWERED)).otherwise(key)
    report = (
        daily.lazy()
        .group_by(key.alias(by))
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

    JSON and CSV carry dollars exactly, every one in the same fixed-point form with the marts'
    12 decimals (`0.005213550000`, never `5.21355e-03` beside `0.080286`); JSON keeps them
    numbers. Only the table rounds dollars, to 6 decimals. No trailing newline: callers `print` it.
    """
    by = df.columns[0]
    rows = df.rows(named=True)
    total = _total(df)
    if fmt == "json":
        document = {
            "by": by,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "rows": [_usd_json(row) for row in rows],
            "total": _usd_json(total),
        }
        # json writes floats in their shortest form; the fixed-point text goes in verbatim.
        return _USD_JSON.sub(lambda m: m.group(1), json.dumps(document, indent=2))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(df.columns)
        writer.writerows({**row, "cost_usd": exact_usd_text(row["cost_usd"])}.values() for row in rows)
        return buffer.getvalue().rstrip("\n")
    return _table(by, rows, total)


_USD_MARK = "usd:"
_USD_JSON = re.compile(r'"usd:(-?[0-9]+\.[0-9]+)"')


def exact_usd_text(value: float) -> str:
    """A mart dollar figure in fixed point with `USD_SCALE` decimals: exactly the decimal the
    mart summed (a float from a 12-place decimal prints back as that decimal)."""
    return f"{Decimal(repr(value)).quantize(Decimal(1).scaleb(-USD_SCALE)):f}"


def _usd_json(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "cost_usd": _USD_MARK + exact_usd_text(row["cost_usd"])}


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
