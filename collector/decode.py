"""OTLP/HTTP request bodies -> table rows: spans -> `spans` rows, usage logs -> `usage` rows.

A record that cannot be stored is counted as rejected with its reason (OTLP partial success);
the rest of its batch still goes through. A body that cannot be read at all raises BadRequest.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from collector.errors import BadRequest
from collector.raw_logs import parse_raw_logs
from collector.usage_columns import BadKeyValue, UsageColumns
from collector.wire import Encoding, parse_request
from meterline import semconv
from meterline.otlp_usage import UsageDecodeError, is_usage_log
from meterline.span_row import SpanRow
from meterline.usage_record import USAGE_EVENT_NAME

Row = dict[str, Any]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SPAN_COLUMNS = tuple(f.name for f in fields(SpanRow))
_MAX_REASONS = 5
"""How many rejection reasons a partial-success message spells out; the count covers all."""


@dataclass(slots=True)
class DecodedBatch:
    """Rows ready for one table, plus what was rejected and why."""

    rows: list[Row] = field(default_factory=list)
    """Span rows (traces)."""
    table: pa.Table | None = None
    """Usage records (logs), already in the ledger's Arrow schema."""
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.table.num_rows if self.table is not None else len(self.rows)

    def reject(self, where: str, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < _MAX_REASONS:
            self.reasons.append(f"{where}: {reason}")

    @property
    def message(self) -> str:
        if not self.rejected:
            return ""
        more = self.rejected - len(self.reasons)
        return "; ".join(self.reasons) + (f"; and {more} more" if more else "")


def decode_traces(body: bytes, encoding: Encoding) -> DecodedBatch:
    request = parse_request(body, encoding, ExportTraceServiceRequest)
    batch = DecodedBatch()
    for r, resource_spans in enumerate(request.resource_spans):
        resource = _attributes(resource_spans.resource.attributes)
        resource_json = _json(resource)
        service = resource.get(semconv.SERVICE_NAME)
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            scope_name = scope_spans.scope.name or None
            for i, span in enumerate(scope_spans.spans):
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    # Without valid ids a span can be neither joined nor deduplicated.
                    batch.reject(f"resource_spans[{r}].scope_spans[{s}].spans[{i}]", "trace_id/span_id missing")
                    continue
                row = _span_row(span, service if isinstance(service, str) else None, scope_name, resource_json)
                batch.rows.append(row)
    return batch


def decode_logs(body: bytes, encoding: Encoding) -> DecodedBatch:
    """Usage records from the `meterline.usage` log records, as `batch.table` (the ledger's
    Arrow schema); other logs are not stored (yet). Protobuf bodies take the raw-attribute path
    (raw_logs.py), JSON ones the message path; both accept and refuse the same records."""
    batch = DecodedBatch()
    columns = UsageColumns()
    if encoding is Encoding.PROTOBUF:
        _raw_usage(parse_raw_logs(body), columns, batch)
    else:
        _usage(parse_request(body, encoding, ExportLogsServiceRequest), columns, batch)
    try:
        batch.table = columns.table()
    except (pa.ArrowException, TypeError, ValueError) as exc:
        # Whole columns convert at once, so one bad value fails them all; name the batch, not a record.
        raise BadRequest(f"usage records do not fit the ledger schema: {exc}") from None
    return batch


def _usage(request: ExportLogsServiceRequest, columns: UsageColumns, batch: DecodedBatch) -> None:
    for r, resource_logs in enumerate(request.resource_logs):
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            for i, log in enumerate(scope_logs.log_records):
                if not is_usage_log(log):
                    continue
                try:
                    columns.add(log)
                except UsageDecodeError as exc:
                    batch.reject(f"resource_logs[{r}].scope_logs[{s}].log_records[{i}]", str(exc))


def _raw_usage(request: Any, columns: UsageColumns, batch: DecodedBatch) -> None:
    for r, resource_logs in enumerate(request.resource_logs):
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            for i, raw in enumerate(scope_logs.log_records):
                if raw.event_name != USAGE_EVENT_NAME:
                    continue

                def full(raw: Any = raw) -> LogRecord:
                    record: LogRecord = LogRecord.FromString(raw.SerializeToString())
                    return record

                try:
                    columns.add_raw(raw.attributes, raw.trace_id, raw.span_id, full)
                except UsageDecodeError as exc:
                    batch.reject(f"resource_logs[{r}].scope_logs[{s}].log_records[{i}]", str(exc))
                except BadKeyValue as exc:
                    raise BadRequest(f"body is not a protobuf ExportLogsServiceRequest: {exc}") from None


def _span_row(span: Span, service: str | None, scope_name: str | None, resource_json: str) -> Row:
    attrs = _attributes(span.attributes)
    start = _from_nanos(span.start_time_unix_nano)
    row = SpanRow(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        name=span.name,
        kind=_enum_name(Span.SpanKind, span.kind, "SPAN_KIND_"),
        ts_start=start,
        ts_end=_from_nanos(span.end_time_unix_nano),
        duration_ms=(span.end_time_unix_nano - span.start_time_unix_nano) / 1e6,
        date=start.date(),
        service_name=service,
        scope_name=scope_name,
        status_code=_enum_name(Status.StatusCode, span.status.code, "STATUS_CODE_"),
        status_message=span.status.message or None,
        operation=_str(attrs, semconv.GEN_AI_OPERATION_NAME),
        request_model=_str(attrs, semconv.GEN_AI_REQUEST_MODEL),
        response_model=_str(attrs, semconv.GEN_AI_RESPONSE_MODEL),
        agent_id=_str(attrs, semconv.METERLINE_AGENT_ID),
        input_tokens=_int(attrs, semconv.GEN_AI_USAGE_INPUT_TOKENS),
        output_tokens=_int(attrs, semconv.GEN_AI_USAGE_OUTPUT_TOKENS),
        cost_usd=_float(attrs, semconv.METERLINE_COST_USD),
        attributes=_json(attrs),
        resource_attributes=resource_json,
    )
    return {name: getattr(row, name) for name in _SPAN_COLUMNS}


def _enum_name(enum_type: Any, number: int, prefix: str) -> str:
    try:
        name: str = enum_type.Name(number)
    except ValueError:  # proto3 enums are open: a newer sender may use a value this one lacks
        return str(number)
    return name.removeprefix(prefix)


def _from_nanos(nanos: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=nanos // 1000)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


_PLAIN = frozenset({"string_value", "int_value", "bool_value"})


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind in _PLAIN:  # nearly every attribute: answer before the rarer kinds are tried
        return getattr(value, kind)
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "double_value" and not math.isfinite(value.double_value):
        return str(value.double_value)  # JSON has no NaN or infinity
    return getattr(value, kind) if kind else None


def _json(values: Mapping[str, Any]) -> str:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def _str(attrs: Mapping[str, Any], key: str) -> str | None:
    value = attrs.get(key)
    return value if isinstance(value, str) else None


def _int(attrs: Mapping[str, Any], key: str) -> int | None:
    value = attrs.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) else None


def _float(attrs: Mapping[str, Any], key: str) -> float | None:
    value = attrs.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
