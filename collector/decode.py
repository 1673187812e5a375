"""OTLP/HTTP request bodies -> table rows: spans -> `spans` rows, usage logs -> `usage` rows.

A record that cannot be stored is counted as rejected with its reason (OTLP partial success);
the rest of its batch still goes through. A body that cannot be read at all raises BadRequest.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from collector import native_logs, native_spans
from collector.errors import BadRequest
from collector.raw_logs import parse_raw_logs
from collector.usage_columns import BadKeyValue, UsageColumns
from collector.wire import Encoding, parse_request
from meterline import semconv
from meterline.layout import PARTITION_KEY
from meterline.otlp_usage import UsageDecodeError, is_usage_log
from meterline.span_row import span_arrow_schema
from meterline.usage_record import USAGE_EVENT_NAME

if TYPE_CHECKING:
    from collector.validation import Verdict

Row = dict[str, Any]

_MAX_REASONS = 5
"""How many rejection reasons a partial-success message spells out; the count covers all."""


@dataclass(slots=True)
class DecodedBatch:
    """Rows ready for one table, plus what was rejected and why."""

    rows: list[Row] = field(default_factory=list)
    """Rows for `writer.build_table`, for callers that hold rows rather than a table."""
    table: pa.Table | None = None
    """What the decoders produce: spans or usage records in their table's Arrow schema."""
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    request_ids: list[str] | None = None
    """The usage table's request_id column as a list, when the decoder has it anyway."""
    verdict: Verdict | None = None
    """The usage table's records checked (`Pipeline.check_usage`), when that ran already."""
    undecodable: list[tuple[str, bytes]] = field(default_factory=list)
    """Usage records refused before they became rows: (reason, the LogRecord's protobuf bytes),
    for the quarantine."""

    @property
    def accepted(self) -> int:
        return self.table.num_rows if self.table is not None else len(self.rows)

    def reject(self, where: str, reason: str, record: bytes | None = None) -> None:
        """Count one refused record; `record` (a usage LogRecord's bytes) goes to the quarantine."""
        self.rejected += 1
        if record is not None:
            self.undecodable.append((reason, record))
        if len(self.reasons) < _MAX_REASONS:
            self.reasons.append(f"{where}: {reason}")

    @property
    def message(self) -> str:
        if not self.rejected:
            return ""
        more = self.rejected - len(self.reasons)
        return "; ".join(self.reasons) + (f"; and {more} more" if more else "")


def decode_traces(body: bytes, encoding: Encoding, *, native: bool | None = None) -> DecodedBatch:
    """Spans as `batch.table` (the `spans` schema), built column-wise: timestamps stay integer
    microseconds and dates integer days until Arrow converts whole columns. Protobuf bodies take
    the native decoder (native_spans.py) when it is built and `native` is not False."""
    batch = DecodedBatch()
    if encoding is Encoding.PROTOBUF and native is not False and native_logs.available() and native_spans.available():
        batch.table = native_spans.decode_spans(body, batch, _span_values, _resource_values)
        return batch
    request = parse_request(body, encoding, ExportTraceServiceRequest)
    rows: list[tuple[Any, ...]] = []
    for r, resource_spans in enumerate(request.resource_spans):
        service, resource_json = _resource_values(resource_spans.resource)
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            scope_name = scope_spans.scope.name or None
            for i, span in enumerate(scope_spans.spans):
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    # Without valid ids a span can be neither joined nor deduplicated.
                    batch.reject(f"resource_spans[{r}].scope_spans[{s}].spans[{i}]", "trace_id/span_id missing")
                    continue
                rows.append(_span_values(span, service, scope_name, resource_json))
    batch.table = _span_table(list(zip(*rows, strict=True)) if rows else [])
    return batch


def _resource_values(resource: Resource) -> tuple[str | None, str]:
    """The service name and the attributes JSON of a span's resource."""
    attributes = _attributes(resource.attributes)
    service = attributes.get(semconv.SERVICE_NAME)
    return (service if isinstance(service, str) else None), _json(attributes)


def decode_logs(body: bytes, encoding: Encoding, *, native: bool | None = None) -> DecodedBatch:
    """Usage records from the `meterline.usage` log records, as `batch.table` (the ledger's
    Arrow schema); other logs are not stored (yet). Protobuf bodies take the native decoder
    (native_logs.py) when it is built and `native` is not False, else the raw-attribute path
    (raw_logs.py); JSON ones the message path. All accept and refuse the same records."""
    batch = DecodedBatch()
    if encoding is Encoding.PROTOBUF and native is not False and native_logs.available():
        batch.table, batch.request_ids = native_logs.decode_usage(body, batch)
        return batch
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
                    where = f"resource_logs[{r}].scope_logs[{s}].log_records[{i}]"
                    batch.reject(where, str(exc), log.SerializeToString())


def _raw_usage(request: Any, columns: UsageColumns, batch: DecodedBatch) -> None:
    for r, resource_logs in enumerate(request.resource_logs):
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            for i, raw in enumerate(scope_logs.log_records):
                if raw.event_name != USAGE_EVENT_NAME:
                    continue

                def full(raw: Any = raw) -> LogRecord:
                    try:
                        record: LogRecord = LogRecord.FromString(raw.SerializeToString())
                    except DecodeError as exc:  # a field the raw parse skipped, e.g. the body
                        raise BadRequest(f"body is not a protobuf ExportLogsServiceRequest: {exc}") from None
                    return record

                try:
                    columns.add_raw(raw.attributes, raw.trace_id, raw.span_id, full)
                except UsageDecodeError as exc:
                    where = f"resource_logs[{r}].scope_logs[{s}].log_records[{i}]"
                    batch.reject(where, str(exc), raw.SerializeToString())
                except BadKeyValue as exc:
                    raise BadRequest(f"body is not a protobuf ExportLogsServiceRequest: {exc}") from None


def _span_values(span: Span, service: str | None, scope_name: str | None, resource_json: str) -> tuple[Any, ...]:
    """One span's values in `SpanRow` field order, which is the `spans` schema's column order."""
    attrs = _attributes(span.attributes)
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    start_us = start // 1000
    status = span.status
    return (
        span.trace_id.hex(),
        span.span_id.hex(),
        span.name,
        start_us,
        end // 1000,
        (end - start) / 1e6,
        start_us // 86_400_000_000,  # the UTC day, as days since the epoch
        span.parent_span_id.hex() or None,
        _SPAN_KINDS.get(span.kind) or str(span.kind),
        service,
        scope_name,
        _STATUS_CODES.get(status.code) or str(status.code),
        status.message or None,
        _str(attrs, semconv.GEN_AI_OPERATION_NAME),
        _str(attrs, semconv.GEN_AI_REQUEST_MODEL),
        _str(attrs, semconv.GEN_AI_RESPONSE_MODEL),
        _str(attrs, semconv.METERLINE_AGENT_ID),
        _int(attrs, semconv.GEN_AI_USAGE_INPUT_TOKENS),
        _int(attrs, semconv.GEN_AI_USAGE_OUTPUT_TOKENS),
        _float(attrs, semconv.METERLINE_COST_USD),
        _json(attrs),
        resource_json,
    )


def _span_table(columns: Sequence[Sequence[Any]]) -> pa.Table:
    """Columns in `spans` schema order (no columns: no rows) -> the table."""
    schema = span_arrow_schema()
    columns = columns or [() for _ in schema.names]
    arrays = []
    for name, values in zip(schema.names, columns, strict=True):
        target = schema.field(name).type
        if name in ("ts_start", "ts_end"):
            arrays.append(pa.array(values, type=pa.int64()).cast(target))
        elif name == PARTITION_KEY:
            arrays.append(pa.array(values, type=pa.int32()).cast(target))
        else:
            arrays.append(pa.array(values, type=target))
    return pa.Table.from_arrays(arrays, schema=schema)


def _enum_names(enum_type: Any, prefix: str) -> dict[int, str]:
    # proto3 enums are open: a newer sender may use a number this one lacks (then: the number).
    return {number: name.removeprefix(prefix) for name, number in enum_type.items()}


_SPAN_KINDS = _enum_names(Span.SpanKind, "SPAN_KIND_")
_STATUS_CODES = _enum_names(Status.StatusCode, "STATUS_CODE_")


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
        # A whole double beyond int64 is not a token count (and would fail the whole column).
        return int(value) if -(2**63) <= value < 2**63 else None
    return value if isinstance(value, int) else None


def _float(attrs: Mapping[str, Any], key: str) -> float | None:
    value = attrs.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
