from __future__ import annotations

import datetime as dt
import gzip
import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from collector.decode import decode_logs, decode_traces
from collector.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from collector.wire import Encoding, decompress
from meterline import semconv
from meterline.otlp_usage import to_log_record
from meterline.usage_record import usage_table
from tests.collector.otlp_fixtures import logs_request, make_usage, otlp_json

UTC = dt.UTC
START_NS = 1_741_996_799_900_000_000  # 2025-03-14T23:59:59.9Z: ends on the next UTC day


def _kv(key: str, **value: object) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))  # type: ignore[arg-type]


def _trace_request() -> ExportTraceServiceRequest:
    chat = Span(
        trace_id=bytes.fromhex("5b8efff798038103d269b633813fc60c"),
        span_id=bytes.fromhex("eee19b7ec3c1b174"),
        parent_span_id=bytes.fromhex("eee19b7ec3c1b173"),
        name="chat gpt-4o-mini",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=START_NS,
        end_time_unix_nano=START_NS + 250_500_000,
        status=Status(code=Status.STATUS_CODE_ERROR, message="upstream timeout"),
        attributes=[
            _kv(semconv.GEN_AI_OPERATION_NAME, string_value="chat"),
            _kv(semconv.GEN_AI_REQUEST_MODEL, string_value="gpt-4o-mini"),
            _kv(semconv.GEN_AI_RESPONSE_MODEL, string_value="gpt-4o-mini-2024-07-18"),
            _kv(semconv.METERLINE_AGENT_ID, string_value="support-bot"),
            _kv(semconv.GEN_AI_USAGE_INPUT_TOKENS, int_value=1200),
            _kv(semconv.GEN_AI_USAGE_OUTPUT_TOKENS, int_value=345),
            _kv(semconv.METERLINE_COST_USD, double_value=0.000387),
            _kv(semconv.GEN_AI_RESPONSE_FINISH_REASONS, array_value=ArrayValue(values=[AnyValue(string_value="stop")])),
        ],
    )
    bare = Span(trace_id=chat.trace_id, span_id=bytes.fromhex("eee19b7ec3c1b173"), name="agent-run")
    no_ids = Span(name="broken")
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[_kv("service.name", string_value="support-bot")]),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name="agent.sdk"), spans=[chat, bare, no_ids])],
            )
        ]
    )


@pytest.mark.parametrize("encoding", list(Encoding))
def test_spans_become_rows_with_promoted_columns(encoding: Encoding) -> None:
    request = _trace_request()
    body = request.SerializeToString() if encoding is Encoding.PROTOBUF else otlp_json(request)

    batch = decode_traces(body, encoding)

    assert batch.rejected == 1
    assert batch.message == "resource_spans[0].scope_spans[0].spans[2]: trace_id/span_id missing"
    assert batch.table is not None
    chat, bare = batch.table.to_pylist()
    start = dt.datetime(2025, 3, 14, 23, 59, 59, 900000, tzinfo=UTC)
    assert chat == {
        "trace_id": "5b8efff798038103d269b633813fc60c",
        "span_id": "eee19b7ec3c1b174",
        "name": "chat gpt-4o-mini",
        "ts_start": start,
        "ts_end": start + dt.timedelta(microseconds=250_500),
        "duration_ms": 250.5,
        "date": dt.date(2025, 3, 14),
        "parent_span_id": "eee19b7ec3c1b173",
        "kind": "CLIENT",
        "service_name": "support-bot",
        "scope_name": "agent.sdk",
        "status_code": "ERROR",
        "status_message": "upstream timeout",
        "operation": "chat",
        "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "agent_id": "support-bot",
        "input_tokens": 1200,
        "output_tokens": 345,
        "cost_usd": 0.000387,
        "attributes": json.dumps(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "meterline.agent.id": "support-bot",
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.output_tokens": 345,
                "meterline.cost.usd": 0.000387,
                "gen_ai.response.finish_reasons": ["stop"],
            },
            separators=(",", ":"),
        ),
        "resource_attributes": '{"service.name":"support-bot"}',
    }
    assert (bare["parent_span_id"], bare["kind"], bare["status_code"], bare["input_tokens"]) == (
        None,
        "UNSPECIFIED",
        "UNSET",
        None,
    )
    assert bare["date"] == dt.date(1970, 1, 1)


def test_json_follows_the_otlp_spec_example_shape() -> None:
    # Hand-written as the OTLP spec shows it: camelCase, hex ids, enum as int, int64 as string.
    body = json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "agent"}}]},
                    "scopeSpans": [
                        {
                            "scope": {"name": "s"},
                            "spans": [
                                {
                                    "traceId": "5B8EFFF798038103D269B633813FC60C",
                                    "spanId": "EEE19B7EC3C1B174",
                                    "name": "n",
                                    "kind": 3,
                                    "startTimeUnixNano": "1544712660000000000",
                                    "endTimeUnixNano": "1544712661000000000",
                                    "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "7"}}],
                                    "someFutureField": {"ignored": True},
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    ).encode()

    table = decode_traces(body, Encoding.JSON).table
    assert table is not None
    (row,) = table.to_pylist()

    assert (row["trace_id"], row["span_id"], row["kind"]) == (
        "5b8efff798038103d269b633813fc60c",
        "eee19b7ec3c1b174",
        "CLIENT",
    )
    assert (row["input_tokens"], row["duration_ms"], row["date"]) == (7, 1000.0, dt.date(2018, 12, 13))


@pytest.mark.parametrize("encoding", list(Encoding))
def test_usage_logs_decode_and_bad_ones_are_rejected_with_reason(encoding: Encoding) -> None:
    good = make_usage("req-1")
    missing = to_log_record(make_usage("req-2"))
    kept = [kv for kv in missing.attributes if kv.key != "agent_id"]
    del missing.attributes[:]
    missing.attributes.extend(kept)
    other = LogRecord(event_name="app.started", body=AnyValue(string_value="hello"))
    request = logs_request(to_log_record(good), missing, other)
    body = request.SerializeToString() if encoding is Encoding.PROTOBUF else otlp_json(request)

    batch = decode_logs(body, encoding)

    assert batch.table is not None and batch.table.equals(usage_table([good.as_row()]))
    assert batch.rejected == 1
    assert batch.message == "resource_logs[0].scope_logs[0].log_records[1]: missing required attribute 'agent_id'"


def test_empty_request_id_is_rejected() -> None:
    body = logs_request(to_log_record(make_usage(""))).SerializeToString()
    batch = decode_logs(body, Encoding.PROTOBUF)
    assert (batch.accepted, batch.rejected) == (0, 1)
    assert batch.message == "resource_logs[0].scope_logs[0].log_records[0]: empty request_id"


@pytest.mark.parametrize(
    ("body", "encoding", "says"),
    [
        (b"not a protobuf", Encoding.PROTOBUF, "not a protobuf ExportTraceServiceRequest"),
        (b"{not json", Encoding.JSON, "not JSON"),
        (b"[1, 2]", Encoding.JSON, "not a JSON ExportTraceServiceRequest object"),
        (b'{"resourceSpans": 5}', Encoding.JSON, "not a JSON ExportTraceServiceRequest"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            Encoding.JSON,
            "resourceSpans[0].scopeSpans[0].spans[0].traceId: 'zz' is not a hex id",
        ),
    ],
)
def test_unreadable_bodies_are_bad_requests(body: bytes, encoding: Encoding, says: str) -> None:
    with pytest.raises(BadRequest, match=says.replace("[", r"\[").replace("]", r"\]")):
        decode_traces(body, encoding)


def test_content_type_and_encoding_negotiation() -> None:
    assert Encoding.of("application/json; charset=utf-8") is Encoding.JSON
    assert Encoding.of("Application/X-Protobuf") is Encoding.PROTOBUF
    with pytest.raises(UnsupportedMediaType, match="'text/plain'"):
        Encoding.of("text/plain")
    with pytest.raises(UnsupportedMediaType, match="br"):
        decompress(b"x", "br", 100)


def test_gzip_is_inflated_within_the_limit() -> None:
    assert decompress(gzip.compress(b"a" * 100), "gzip", 100) == b"a" * 100
    with pytest.raises(PayloadTooLarge, match="decompressed body exceeds 99 bytes"):
        decompress(gzip.compress(b"a" * 100), "gzip", 99)
    with pytest.raises(BadRequest, match="not valid gzip"):
        decompress(b"plain", "gzip", 100)
    with pytest.raises(BadRequest, match="truncated"):
        decompress(gzip.compress(b"a" * 100)[:-10], "gzip", 100)
