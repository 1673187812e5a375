"""Rows and traces as text: an aligned table, JSON or CSV, and a trace as a terminal waterfall.

JSON and CSV carry values exactly (floats in their shortest round-tripping form, times in ISO
8601 UTC, lists and maps as JSON inside a CSV cell); only the table shortens long cells.
No trailing newline: callers `print` the result.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import decimal
import io
import json
import math
from collections.abc import Sequence
from typing import Any, Literal

from analytics.traces.waterfall import Trace, WaterfallSpan

Format = Literal["table", "json", "csv"]
TABLE_CELL_CHARS = 60
BAR_WIDTH = 40


def plain(value: Any) -> Any:
    """A value JSON can carry: times in ISO form, NaN and infinities as strings, bytes as hex."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _cell(value: Any) -> str:
    """A CSV cell: lists and maps as JSON, None empty, the rest as its plain text."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _table_cell(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        text = f"{value:.6f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.1f}"
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        text = ",".join(value)
    elif isinstance(value, dt.datetime):
        text = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if value.tzinfo else str(value)
    else:
        text = _cell(value)
    text = text.replace("\n", " ")
    return text if len(text) <= TABLE_CELL_CHARS else text[: TABLE_CELL_CHARS - 3] + "..."


def render_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: Format) -> str:
    """Rows (value sequences in `columns` order) as a table, a JSON array of objects, or CSV."""
    if fmt == "json":
        return json.dumps([{c: plain(v) for c, v in zip(columns, row, strict=True)} for row in rows], indent=1,
                          ensure_ascii=False)  # fmt: skip
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(v) for v in row] for row in rows)
        return buffer.getvalue().rstrip("\n")
    cells = [[usd(v) if c.endswith("cost_usd") and isinstance(v, float) else _table_cell(v)
              for c, v in zip(columns, row, strict=True)] for row in rows]  # fmt: skip
    widths = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
    numeric = [bool(rows) and all(isinstance(row[i], int | float) or row[i] is None for row in rows)
               for i in range(len(columns))]  # fmt: skip

    def line(values: Sequence[str]) -> str:
        padded = (v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True))
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    footer = f"({_count(len(rows), 'row')})"
    return "\n".join([line(columns), rule, *(line(c) for c in cells), footer])


def usd(value: float | None) -> str:
    """Dollars to the nanodollar, trailing zeros dropped (at least cents): $0.000387, $1.50."""
    if value is None:
        return "-"
    text = f"{value:.9f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def _bar(span: WaterfallSpan, total_ms: float) -> str:
    scale = BAR_WIDTH / total_ms if total_ms > 0 else 0.0
    begin = min(BAR_WIDTH - 1, int(span.offset_ms * scale))
    end = max(begin + 1, min(BAR_WIDTH, round((span.offset_ms + span.duration_ms) * scale)))
    mark = "x" if span.status_code == "ERROR" else "="
    return "|" + " " * begin + mark * (end - begin) + " " * (BAR_WIDTH - end) + "|"


def _label(span: WaterfallSpan) -> str:
    parts = [span.name]
    details = [d for d in (span.service_name, span.kind, span.role) if d]
    if span.status_code == "ERROR":
        details.append(f"ERROR {span.status_message}" if span.status_message else "ERROR")
    if not span.stored:
        details.append("span not stored: from its usage record")
    if details:
        parts.append(f"[{', '.join(details)}]")
    if span.usage is not None:
        parts.append(f"<- {span.usage['request_id']}")
    return " ".join(parts)


def _usage_line(record: dict[str, Any]) -> str:
    model = record["model"] or "-"
    return (
        f"  {record['request_id']}  agent {record['agent_id']}  {record['model_requested']} -> {model}  "
        f"{record['status']} {record['http_status']}  in {record['input_tokens']} out {record['output_tokens']} "
        f"tokens  {usd(record['cost_usd'])}"
        + f"  attempts {record['attempts']}{' (fallback)' if record['fallback_used'] else ''}"
        + f"  {record['latency_ms']:.1f} ms"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def render_waterfall(trace: Trace, attributes: bool = False) -> str:
    """The trace as lines: offset and duration in ms, a bar scaled to the trace's duration, and
    the span indented by depth; then its usage records. `attributes`: each span's attributes."""
    start = trace.ts_start.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    half = BAR_WIDTH // 2 + 1
    lines = [
        f"trace {trace.trace_id}  {start} UTC  {trace.duration_ms:.1f} ms  "
        f"{_count(len(trace.spans), 'span')}  {_count(len(trace.usage), 'usage record')}",
        f"{'offset ms':>10} {'dur ms':>9}  {'0':<{half}}{f'{trace.duration_ms:.0f} ms':>{half}}  span",
    ]
    for span in trace.spans:
        lines.append(
            f"{span.offset_ms:>10.1f} {span.duration_ms:>9.1f}  {_bar(span, trace.duration_ms)}  "
            f"{'  ' * span.depth}{_label(span)}"
        )
        if attributes:
            pad = " " * (10 + 1 + 9 + 2 + BAR_WIDTH + 2 + 2 + 2 * span.depth)
            lines.append(f"{pad}span_id {span.span_id}")
            lines.extend(f"{pad}{key} = {json.dumps(plain(value), ensure_ascii=False)}"
                         for key, value in sorted(span.attributes.items()))  # fmt: skip
    if trace.usage:
        lines.append("usage records:")
        lines.extend(_usage_line(record) for record in trace.usage)
    return "\n".join(lines)


def trace_document(trace: Trace) -> dict[str, Any]:
    """The whole trace as plain JSON values: spans in waterfall order, then the usage records."""
    document: dict[str, Any] = plain(dataclasses.asdict(trace))
    return document
