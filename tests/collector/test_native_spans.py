"""The native span decoder must give exactly the tables, rejections and errors of the Python path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from collector.decode import decode_traces
from collector.errors import BadRequest
from collector.wire import Encoding
from meterline import semconv
from meterline.span_row import span_arrow_schema
from tests.collector.test_decode import START_NS, _trace_request

pytestmark = pytest.mark.native("collector._otlp_native", "collector._otlp_spans")

Outcome = tuple[Any, ...]


def _outcome(body: bytes, native: bool) -> Outcome:
    try:
        batch = decode_traces(body, Encoding.PROTOBUF, native=native)
    except BadRequest as exc:
        assert str(exc).startswith("body is not a protobuf ExportTraceServiceRequest: ")
        return ("400",)
    assert batch.table is not None
    batch.table.validate(full=True)  # offsets, UTF-8 and bitmaps of the imported buffers
    table = batch.table
    return (table.to_pylist(), table.schema, table.schema.metadata, table, batch.rejected, batch.message)


def _same(body: bytes) -> Outcome:
    python, native = _outcome(body, native=False), _outcome(body, native=True)
    assert native == python
    return native


def _kv(key: str, **value: object) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))  # type: ignore[arg-type]


def _body(*spans: Span, resource: Resource | None = None) -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=resource or Resource(attributes=[_kv("service.name", string_value="gw")]),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name="meterline.gateway"), spans=spans)],
            )
        ]
    )
    body: bytes = request.SerializeToString()
    return body


def test_the_decode_fixture_decodes_identically() -> None:
    rows, _schema, _metadata, _table, rejected, message = _same(_trace_request().SerializeToString())

    assert [row["name"] for row in rows] == ["chat gpt-4o-mini", "agent-run"]
    assert rows[0]["attributes"] == (
        '{"gen_ai.operation.name":"chat","gen_ai.request.model":"gpt-4o-mini",'
        '"gen_ai.response.model":"gpt-4o-mini-2024-07-18","meterline.agent.id":"support-bot",'
        '"gen_ai.usage.input_tokens":1200,"gen_ai.usage.output_tokens":345,"meterline.cost.usd":0.000387,'
        '"gen_ai.response.finish_reasons":["stop"]}'
    )
    assert (rows[0]["input_tokens"], rows[0]["cost_usd"], rows[0]["duration_ms"]) == (1200, 0.000387, 250.5)
    assert (rejected, message) == (1, "resource_spans[0].scope_spans[0].spans[2]: trace_id/span_id missing")


def test_plain_spans_with_escapes_numbers_and_promoted_values_decode_identically() -> None:
    span = Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        name="chat \u00e9\u4e2d",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=START_NS,
        end_time_unix_nano=START_NS + 1,
        status=Status(code=Status.STATUS_CODE_OK),
        attributes=[
            _kv('quote"back\\slash', string_value="tab\t nl\n cr\r bell\x07 del\x7f \u2028 \U0001f600"),
            _kv(semconv.GEN_AI_USAGE_INPUT_TOKENS, int_value=-(2**63)),
            _kv(semconv.GEN_AI_USAGE_OUTPUT_TOKENS, bool_value=True),
            _kv(semconv.METERLINE_COST_USD, int_value=3),
            _kv(semconv.METERLINE_AGENT_ID, int_value=3),
            _kv("big", double_value=1e16),
            _kv("small", double_value=-1.5e-7),
            _kv("flag", bool_value=False),
        ],
    )
    ((row,), _, _, _, rejected, _) = _same(_body(span))

    assert rejected == 0
    assert (row["input_tokens"], row["output_tokens"], row["cost_usd"], row["agent_id"]) == (-(2**63), None, 3.0, None)
    assert row["attributes"].endswith('"big":1e+16,"small":-1.5e-07,"flag":false}')


def test_every_byte_class_at_every_place_in_a_string_is_escaped_as_json_escapes_it() -> None:
    """Strings are copied eight bytes at a time until a byte needs an escape: try each near the edges."""
    specials = ['"', "\\", "\x00", "\x1f", " ", "!", "#", "[", "]", "\x7f", "\u00e9", "\U0001f600"]
    values = [("a" * at + c + "b" * (17 - at))[: 4 + at % 14] for c in specials for at in range(18)]
    span = Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        name="n" * 9 + '"',
        attributes=[_kv(f"k{k:02d}{v}", string_value=v) for k, v in enumerate(values)],
    )
    ((row,), _, _, _, rejected, _) = _same(_body(span))

    assert rejected == 0
    assert json.loads(row["attributes"]) == {f"k{k:02d}{v}": v for k, v in enumerate(values)}


@pytest.mark.parametrize("at", range(18))
@pytest.mark.parametrize("bad", [b"\xff", b"\xc3", b"\xe9"])
def test_a_byte_that_is_not_utf8_anywhere_in_a_string_gets_the_same_answer(at: int, bad: bytes) -> None:
    """ASCII is checked eight bytes at a time: put the bad byte before, at and after each word."""
    plain = _body(
        Span(
            trace_id=b"\x01" * 16,
            span_id=b"\x02" * 8,
            name="N" * 18,
            status=Status(message="M" * 18),
            attributes=[_kv("K" * 18, string_value="V" * 18)],
        )
    )
    for letter in b"NMKV":
        run = bytes([letter]) * 18
        body = plain.replace(run, run[:at] + bad + run[at + 1 :])
        assert body != plain
        _same(body)


def test_integers_at_every_width_and_sign_are_written_as_json_writes_them() -> None:
    numbers = [0, 1, -1, 9, 10, -10, 99, 100, 12345, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63), -(2**63) + 1]
    span = Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        attributes=[_kv(f"n{k}", int_value=n) for k, n in enumerate(numbers)],
    )
    ((row,), _, _, _, rejected, _) = _same(_body(span))

    assert rejected == 0
    assert row["attributes"] == "{" + ",".join(f'"n{k}":{n}' for k, n in enumerate(numbers)) + "}"


def test_a_whole_double_token_count_beyond_int64_is_no_count_not_a_failed_batch() -> None:
    """Found by the generated test below: int(1e20) used to fail the whole int64 column (a 500)."""
    span = Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        name="chat",
        start_time_unix_nano=START_NS,
        end_time_unix_nano=START_NS + 1000,
        attributes=[
            _kv(semconv.GEN_AI_USAGE_INPUT_TOKENS, double_value=1e20),
            _kv(semconv.GEN_AI_USAGE_OUTPUT_TOKENS, double_value=-(2.0**63)),
        ],
    )
    ((row,), _, _, _, rejected, _) = _same(_body(span))

    assert rejected == 0
    assert (row["input_tokens"], row["output_tokens"]) == (None, -(2**63))


_keys = st.sampled_from(
    ["a", "b", "k\u00e9", semconv.GEN_AI_USAGE_INPUT_TOKENS, semconv.METERLINE_COST_USD, semconv.GEN_AI_REQUEST_MODEL]
)
_plain = st.one_of(
    st.builds(lambda v: AnyValue(string_value=v), st.text(max_size=8)),
    st.builds(lambda v: AnyValue(int_value=v), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    st.builds(lambda v: AnyValue(double_value=v), st.floats()),
    st.builds(lambda v: AnyValue(bool_value=v), st.booleans()),
    st.just(AnyValue()),
)
_values = st.one_of(
    _plain,
    st.builds(lambda v: AnyValue(bytes_value=v), st.binary(max_size=4)),
    st.builds(lambda vs: AnyValue(array_value=ArrayValue(values=vs)), st.lists(_plain, max_size=3)),
    st.just(AnyValue(kvlist_value=KeyValueList(values=[_kv("k", int_value=1)]))),
)


@st.composite
def _spans(draw: st.DrawFn) -> Span:
    start = draw(st.integers(min_value=0, max_value=2**64 - 1))
    span = Span(
        trace_id=draw(st.sampled_from([b"\x07" * 16, b"", b"\x07" * 15])),
        span_id=draw(st.sampled_from([b"\x08" * 8, b"\x08" * 8, b""])),
        parent_span_id=draw(st.sampled_from([b"", b"\x09" * 8])),
        name=draw(st.text(max_size=8)),
        kind=draw(st.integers(min_value=0, max_value=7)),  # type: ignore[arg-type]
        start_time_unix_nano=start,
        end_time_unix_nano=draw(st.sampled_from([start, min(start + 12_345, 2**64 - 1), 0])),
        attributes=[KeyValue(key=k, value=v) for k, v in draw(st.lists(st.tuples(_keys, _values), max_size=6))],
    )
    if draw(st.booleans()):
        span.status.code = draw(st.integers(min_value=0, max_value=3))  # type: ignore[assignment]
        span.status.message = draw(st.text(max_size=4))
    if draw(st.integers(min_value=0, max_value=5)) == 0:
        span.events.add(name="e", time_unix_nano=1)
    return span


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_spans(), min_size=1, max_size=4))
def test_generated_spans_decode_identically(spans: list[Span]) -> None:
    _same(_body(*spans))


_BODY = _trace_request().SerializeToString()


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(_BODY) - 1))
def test_every_truncation_gets_the_same_answer(cut: int) -> None:
    _same(_BODY[:cut])


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(_BODY) - 1), st.integers(min_value=0, max_value=255))
def test_a_changed_byte_gets_the_same_answer(position: int, byte: int) -> None:
    _same(_BODY[:position] + bytes([byte]) + _BODY[position + 1 :])


@pytest.mark.parametrize(
    "body",
    [
        b"\x0a\xff\xff\xff\xff\x0f",
        b"\x0a\x02\x12\x05\x12\x03",
        b"\x0a\x80",
        b"\x0b",
        b"\x0c",
        b"\x0a\x04\x1a\x02\xc3\x28",  # schema_url that is not UTF-8
        b"\x0a\x04\x12\x02\x12\x00",  # an empty span
        b"",
    ],
)
def test_malformed_bodies_get_the_same_answer(body: bytes) -> None:
    _same(body)


def _plain_span(n: int, **fields: Any) -> Span:
    defaults: dict[str, Any] = {"name": f"span {n}"}
    return Span(
        trace_id=bytes([n]) * 16,
        span_id=bytes([n]) * 8,
        start_time_unix_nano=START_NS + n,
        end_time_unix_nano=START_NS + 1_000_000 * n,
        **(defaults | fields),
    )


def test_nulls_non_ascii_and_promoted_values_land_in_their_rows() -> None:
    spans = [
        _plain_span(
            1,
            parent_span_id=b"\xab" * 8,
            status=Status(code=Status.STATUS_CODE_ERROR, message="d\u00e9j\u00e0 \u4e2d"),
            attributes=[
                _kv(semconv.GEN_AI_REQUEST_MODEL, string_value="m\u00f6del"),
                _kv(semconv.GEN_AI_USAGE_OUTPUT_TOKENS, int_value=7),
                _kv(semconv.METERLINE_COST_USD, double_value=0.25),
            ],
        ),
        _plain_span(2),
        _plain_span(3, name="", attributes=[_kv(semconv.GEN_AI_USAGE_INPUT_TOKENS, int_value=5)]),
    ]
    resource = Resource(attributes=[_kv("host", string_value="h\u00f4te")])  # no service.name: a null service
    rows, _, _, table, rejected, _ = _same(_body(*spans, resource=resource))

    assert rejected == 0
    assert [r["parent_span_id"] for r in rows] == ["ab" * 8, None, None]
    assert [r["status_message"] for r in rows] == ["d\u00e9j\u00e0 \u4e2d", None, None]
    assert [r["status_code"] for r in rows] == ["ERROR", "UNSET", "UNSET"]
    assert [r["request_model"] for r in rows] == ["m\u00f6del", None, None]
    assert [r["input_tokens"] for r in rows] == [None, None, 5]
    assert [r["output_tokens"] for r in rows] == [7, None, None]
    assert [r["cost_usd"] for r in rows] == [0.25, None, None]
    assert [r["name"] for r in rows] == ["span 1", "span 2", ""]
    assert [r["attributes"] for r in rows][1:] == ["{}", '{"gen_ai.usage.input_tokens":5}']
    assert [r["service_name"] for r in rows] == [None, None, None]
    assert rows[0]["resource_attributes"] == '{"host":"h\u00f4te"}'
    assert [r["duration_ms"] for r in rows] == [(1_000_000 * n - n) / 1e6 for n in (1, 2, 3)]
    assert table.column("service_name").null_count == 3
    assert table.column("parent_span_id").null_count == 2


def test_irregular_and_rejected_spans_mid_batch_keep_their_places() -> None:
    with_event = _plain_span(2)
    with_event.events.add(name="e", time_unix_nano=START_NS)
    with_link = _plain_span(3)
    with_link.links.add(trace_id=b"\x05" * 16, span_id=b"\x06" * 8)
    array_in_array = _plain_span(
        5, attributes=[_kv("a", array_value=ArrayValue(values=[AnyValue(array_value=ArrayValue())]))]
    )
    no_ids = Span(name="no ids", start_time_unix_nano=START_NS)
    body = _body(_plain_span(1), with_event, with_link, no_ids, _plain_span(4), array_in_array, _plain_span(6))
    rows, _, _, _, rejected, message = _same(body)

    assert [r["name"] for r in rows] == ["span 1", "span 2", "span 3", "span 4", "span 5", "span 6"]
    assert rows[4]["attributes"] == '{"a":[[]]}'
    assert (rejected, message) == (1, "resource_spans[0].scope_spans[0].spans[3]: trace_id/span_id missing")


def test_plain_spans_never_reach_the_python_row_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The native path must really decode them, not fall back span by span."""
    body = _body(_plain_span(1), _plain_span(2))
    monkeypatch.setattr("collector.decode._span_values", None)  # calling it would raise TypeError

    batch = decode_traces(body, Encoding.PROTOBUF)

    assert batch.table is not None
    assert batch.table.column("name").to_pylist() == ["span 1", "span 2"]


@pytest.mark.parametrize(
    "request_",
    [
        ExportTraceServiceRequest(),
        ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans()])]),
        ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[Span()])])]),
    ],
)
def test_a_batch_without_stored_spans_is_an_empty_table_of_the_schema(request_: ExportTraceServiceRequest) -> None:
    rows, schema, metadata, table, _, _ = _same(request_.SerializeToString())

    assert (rows, table.num_columns, metadata) == ([], 22, {b"meterline.spans.schema_version": b"1"})
    assert schema.equals(span_arrow_schema(), check_metadata=True)


def test_many_spans_grow_the_buffers_past_their_first_guess() -> None:
    spans = [_plain_span(n % 250 + 1, attributes=[_kv("k", string_value="v" * (n % 300))]) for n in range(700)]
    rows, *_ = _same(_body(*spans))

    assert len(rows) == 700
    assert rows[699]["attributes"] == '{"k":"' + "v" * (699 % 300) + '"}'
