"""The native usage decoder must give exactly the tables, rejections and errors of the Python path."""

from __future__ import annotations

import datetime as dt
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from collector import native_logs
from collector.decode import decode_logs
from collector.errors import BadRequest
from collector.usage_columns import _IRREGULAR_SLOT
from collector.wire import Encoding
from meterline.otlp_usage import to_log_record
from meterline.usage_record import UsageRecord, usage_arrow_schema
from tests.collector.otlp_fixtures import logs_request, make_usage, with_attribute

pytestmark = pytest.mark.native("collector._otlp_native")

Outcome = tuple[Any, ...]


def _outcome(body: bytes, native: bool) -> Outcome:
    try:
        batch = decode_logs(body, Encoding.PROTOBUF, native=native)
    except BadRequest as exc:
        assert str(exc).startswith("body is not a protobuf ExportLogsServiceRequest: ")
        return ("400",)
    assert batch.table is not None
    batch.table.validate(full=True)  # the native path's hand-made buffers: offsets, bitmaps, UTF-8
    if batch.request_ids is not None:
        assert batch.request_ids == batch.table.column("request_id").to_pylist()
    nulls = tuple(column.null_count for column in batch.table.columns)
    metadata = batch.table.schema.metadata
    return (batch.table.to_pylist(), batch.table.schema, metadata, nulls, batch.rejected, batch.message)


def _same(body: bytes) -> Outcome:
    python, native = _outcome(body, native=False), _outcome(body, native=True)
    assert native == python
    return native


def _fixture_body() -> bytes:
    late = dt.datetime(2025, 3, 15, 23, 59, 59, 999999, tzinfo=dt.UTC)
    records = [
        to_log_record(make_usage("plain")),
        to_log_record(make_usage("streamed", stream=True, ttft_ms=81.5, tags={}, ts_end=late, date=late.date())),
        with_attribute(to_log_record(make_usage("int-cost")), "cost_usd", AnyValue(int_value=2)),
        with_attribute(to_log_record(make_usage("defaults")), "input_tokens", None),
        with_attribute(to_log_record(make_usage("ids-from-record")), "trace_id", None),
        with_attribute(
            to_log_record(make_usage("extra")), "meterline.future", AnyValue(array_value=ArrayValue(values=[]))
        ),
        with_attribute(to_log_record(make_usage("no-team")), "team", None),
        with_attribute(to_log_record(make_usage("bad-tokens")), "input_tokens", AnyValue(string_value="many")),
        with_attribute(to_log_record(make_usage("bad-date")), "date", AnyValue(string_value="14/03/2025")),
        with_attribute(to_log_record(make_usage("week-date")), "date", AnyValue(string_value="2025-W11-5")),
        to_log_record(make_usage("")),
        LogRecord(event_name="app.started", body=AnyValue(string_value="hello")),
        to_log_record(make_usage("unicode", agent_id="客服-bot", tags={"ключ": "значение", "a": ""})),
    ]
    body: bytes = logs_request(*records).SerializeToString()
    return body


def test_fixtures_decode_identically_with_their_rejections() -> None:
    rows, _schema, _metadata, _nulls, rejected, message = _same(_fixture_body())

    assert [row["request_id"] for row in rows] == [
        "plain",
        "streamed",
        "int-cost",
        "defaults",
        "ids-from-record",
        "extra",
        "week-date",
        "unicode",
    ]
    assert [row["cost_usd"] for row in rows][:3] == [0.000387, 0.000387, 2.0]
    assert [row["input_tokens"] for row in rows][2:4] == [1200, 0]
    assert rows[6]["date"] == dt.date(2025, 3, 14)  # ISO week date, accepted by date.fromisoformat
    assert rows[7]["agent_id"] == "客服-bot" and rows[7]["tags"] == [("ключ", "значение"), ("a", "")]
    assert rejected == 4
    assert message == (
        "resource_logs[0].scope_logs[0].log_records[6]: missing required attribute 'team'; "
        "resource_logs[0].scope_logs[0].log_records[7]: attribute 'input_tokens': expected int, got string_value; "
        "resource_logs[0].scope_logs[0].log_records[8]: attribute 'date': Invalid isoformat string: '14/03/2025'; "
        "resource_logs[0].scope_logs[0].log_records[10]: empty request_id"
    )


def test_the_extensions_irregular_slot_is_the_python_decoders() -> None:
    from collector import _otlp_native

    assert _otlp_native.DEF_IRREGULAR == _IRREGULAR_SLOT


_text = st.text(max_size=12)
_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_floats = st.floats(allow_nan=False, width=64)
_times = st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC))


@st.composite
def _records(draw: st.DrawFn) -> UsageRecord:
    start = draw(_times)
    return UsageRecord(
        request_id=draw(_text),
        trace_id=draw(st.binary(min_size=16, max_size=16)).hex(),
        span_id=draw(st.binary(min_size=8, max_size=8)).hex(),
        ts_start=start,
        ts_end=draw(_times),
        latency_ms=draw(_floats),
        agent_id=draw(_text),
        team=draw(_text),
        operation=draw(_text),
        model_requested=draw(_text),
        date=draw(st.dates(min_value=dt.date(1, 1, 1))),
        ttft_ms=draw(st.none() | _floats),
        project=draw(st.none() | _text),
        tags=draw(st.dictionaries(_text, _text, max_size=3)),
        stream=draw(st.booleans()),
        input_tokens=draw(_int64),
        output_tokens=draw(_int64),
        cost_usd=draw(_floats),
        http_status=draw(st.integers(min_value=-1, max_value=999)),
        cache_hit=draw(st.booleans()),
    )


_ODD_VALUES = st.sampled_from(
    [
        AnyValue(int_value=7),
        AnyValue(double_value=1.5),
        AnyValue(string_value="2025-02-29"),
        AnyValue(string_value="2024-02-29"),
        AnyValue(bool_value=True),
        AnyValue(),
        AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="k", value=AnyValue(int_value=1))])),
    ]
)


@st.composite
def _logs(draw: st.DrawFn) -> LogRecord:
    log = to_log_record(draw(_records()))
    if draw(st.booleans()):  # now and then a column with a missing, extra or unexpected value
        key = draw(st.sampled_from(["team", "date", "cost_usd", "input_tokens", "stream", "tags", "trace_id", "x"]))
        log = with_attribute(log, key, draw(st.none() | _ODD_VALUES))
    return log


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_logs(), min_size=1, max_size=4))
def test_generated_records_decode_identically(logs: list[LogRecord]) -> None:
    _same(logs_request(*logs).SerializeToString())


_BODY = logs_request(to_log_record(make_usage("a")), to_log_record(make_usage("b", tags={}))).SerializeToString()


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(_BODY) - 1))
def test_every_truncation_is_the_same_bad_request(cut: int) -> None:
    _same(_BODY[:cut])


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(_BODY) - 1), st.integers(min_value=0, max_value=255))
def test_a_changed_byte_gets_the_same_answer(position: int, byte: int) -> None:
    _same(_BODY[:position] + bytes([byte]) + _BODY[position + 1 :])


_FIXTURES = _fixture_body()


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(_FIXTURES) - 1), st.integers(min_value=0, max_value=255))
def test_a_changed_byte_of_the_fixtures_gets_the_same_answer(position: int, byte: int) -> None:
    # The fixtures hold tags, non-ASCII text, nulls, defaults and irregular records.
    _same(_FIXTURES[:position] + bytes([byte]) + _FIXTURES[position + 1 :])


@pytest.mark.parametrize(
    "body",
    [
        b"\x0a\xff\xff\xff\xff\x0f",  # a resource_logs length far past the end
        b"\x0a\x02\x12\x05\x12\x03",  # scope_logs longer than its resource_logs
        b"\x0a\x80",  # a truncated varint
        b"\x0a" + b"\xff" * 11,  # a varint over ten bytes
        b"\x0b\x0c",  # wire type 3 (group) opened and closed as field 1
        b"\x0b",  # a group never closed
        b"\x0c",  # an end-group with no start
        b"\x0e\x00",  # wire type 6
        b"\x00\x00",  # field number 0
        b"\x09\x01\x02",  # field 1 as fixed64, truncated
        b"\x08\x01",  # field 1 as a varint: an unknown field, skipped
        b"\x0a\x04\x12\x02\x12\x00",  # an empty log record
        b"\x0a\x06\x12\x04\x12\x02\x62\xff",  # event_name that is not UTF-8
        b"",
    ],
)
def test_malformed_bodies_get_the_same_answer(body: bytes) -> None:
    _same(body)


def test_malformed_attribute_in_a_usage_record_is_a_bad_request() -> None:
    log = to_log_record(make_usage("a"))
    wire = bytearray(logs_request(log).SerializeToString())
    key = wire.find(b"agent_id")
    wire[key - 2] = 0x0B  # the attribute's KeyValue key tag becomes a group start
    assert _same(bytes(wire)) == ("400",)


_WITHOUT_EXTENSION = """
import logging, sys
sys.modules["collector._otlp_native"] = None  # as if it had not been built
sys.modules["collector._otlp_spans"] = None
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from collector.decode import decode_logs, decode_traces
from collector.wire import Encoding
from tests.collector.test_decode import _trace_request
from tests.collector.test_native_logs import _fixture_body
logs = decode_logs(_fixture_body(), Encoding.PROTOBUF)
spans = decode_traces(_trace_request().SerializeToString(), Encoding.PROTOBUF)
print(logs.accepted, logs.rejected, spans.accepted, spans.rejected)
"""


def test_without_the_extension_the_python_path_answers_and_says_so_once() -> None:
    root = Path(__file__).parents[2]
    command = [sys.executable, "-c", _WITHOUT_EXTENSION]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60, cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["8", "4", "2", "1"]
    assert done.stderr.count("native OTLP decoder not built") == 1


# -- the Arrow buffers the extension fills -------------------------------------------------------


def _table(*records: LogRecord) -> Any:
    body = logs_request(*records).SerializeToString()
    _same(body)
    return decode_logs(body, Encoding.PROTOBUF, native=True)


def test_nulls_defaults_and_irregular_records_in_the_middle_of_a_batch() -> None:
    batch = _table(
        to_log_record(make_usage("first", ttft_ms=12.5, project=None, tags={})),
        with_attribute(to_log_record(make_usage("int-cost")), "cost_usd", AnyValue(int_value=3)),  # irregular
        with_attribute(to_log_record(make_usage("bad")), "stream", AnyValue(string_value="yes")),  # rejected
        with_attribute(to_log_record(make_usage("no-tokens", project=None)), "input_tokens", None),  # a default
        to_log_record(make_usage("last", stream=True, tags={"k": "v"})),
    )
    table = batch.table
    assert batch.request_ids == ["first", "int-cost", "no-tokens", "last"]
    assert batch.rejected == 1
    assert table.column("project").to_pylist() == [None, "helpdesk", None, "helpdesk"]
    assert table.column("project").null_count == 2
    assert table.column("ttft_ms").to_pylist() == [12.5, None, None, None]
    assert table.column("cost_usd").to_pylist() == [0.000387, 3.0, 0.000387, 0.000387]
    assert table.column("input_tokens").to_pylist() == [1200, 1200, 0, 1200]
    assert table.column("stream").to_pylist() == [False, False, False, True]
    assert table.column("status").to_pylist() == ["ok"] * 4  # a string default, filled natively
    assert table.column("tags").to_pylist() == [[], _GOLD, _GOLD, [("k", "v")]]
    assert table.column("date").null_count == 0 and table.column("date")[0].as_py() == dt.date(2025, 3, 14)


_GOLD = [("cost_center", "cc-102"), ("tier", "gold")]


def _reordered(body: bytes, key: bytes, value: bytes) -> bytes:
    """`body` with the KeyValue `key` = AnyValue bytes `value` written value first: the same
    length, so every enclosing length stays right, but no longer the shape the extension reads."""
    canonical = bytes([0x0A, len(key)]) + key + bytes([0x12, len(value)]) + value
    assert body.count(canonical) == 1
    return body.replace(canonical, bytes([0x12, len(value)]) + value + bytes([0x0A, len(key)]) + key)


def test_attributes_left_to_the_slow_decoder_land_in_the_same_buffers() -> None:
    log = to_log_record(make_usage("slow", tags={"tier": "gold"}, ttft_ms=7.0))
    body = logs_request(log).SerializeToString()
    body = _reordered(body, b"team", b"\x0a\x07support")
    body = _reordered(body, b"input_tokens", b"\x18\xb0\x09")
    body = _reordered(body, b"ttft_ms", b"\x21" + struct.pack("<d", 7.0))
    tier = b"\x0a\x04tier\x12\x06\x0a\x04gold"
    body = _reordered(body, b"tags", b"\x32" + bytes([len(tier) + 2, 0x0A, len(tier)]) + tier)
    _same(body)
    table = decode_logs(body, Encoding.PROTOBUF, native=True).table
    assert table is not None
    row = table.to_pylist()[0]
    assert (row["team"], row["input_tokens"], row["ttft_ms"], row["tags"]) == ("support", 1200, 7.0, [("tier", "gold")])


def test_a_repeated_attribute_keeps_its_last_value_in_every_column_kind() -> None:
    log = to_log_record(make_usage("first-id", tags={"a": "1"}))
    extra = [
        KeyValue(key="request_id", value=AnyValue(string_value="last-id")),
        KeyValue(key="tags", value=AnyValue(kvlist_value=KeyValueList(values=[]))),
        KeyValue(key="ttft_ms", value=AnyValue(double_value=2.5)),
        KeyValue(key="stream", value=AnyValue(bool_value=True)),
        KeyValue(key="date", value=AnyValue(string_value="2024-02-29")),
    ]
    log.attributes.extend(extra)
    batch = _table(log)
    row = batch.table.to_pylist()[0]
    assert batch.request_ids == ["last-id"]
    assert (row["tags"], row["ttft_ms"], row["stream"], row["date"]) == ([], 2.5, True, dt.date(2024, 2, 29))


def test_non_usage_records_between_usage_records_leave_no_values_behind() -> None:
    # Their attributes carry usage keys, and one is not even a valid KeyValue: the Python path
    # never reads a non-usage record's attributes, so neither may the native one keep or judge them.
    def other(*extra: KeyValue) -> LogRecord:
        leak = [
            KeyValue(key="request_id", value=AnyValue(string_value="leak")),
            KeyValue(key="ttft_ms", value=AnyValue(double_value=9.5)),  # no usage record here sets it
        ]
        return LogRecord(event_name="app.log", attributes=[*leak, *extra])

    odd = KeyValue(key="odd", value=AnyValue(string_value="x"))
    usage = [to_log_record(make_usage(name)) for name in "abc"]
    request = logs_request(usage[0], other(), usage[1], other(odd), usage[2])
    wire = bytearray(request.SerializeToString())
    wire[wire.find(b"odd") - 2] = 0x0B  # that KeyValue's key tag becomes a group start
    _same(bytes(wire))
    batch = decode_logs(bytes(wire), Encoding.PROTOBUF, native=True)
    assert batch.request_ids == ["a", "b", "c"] and batch.rejected == 0
    assert batch.table is not None and batch.table.column("ttft_ms").to_pylist() == [None, None, None]


def test_non_ascii_strings_and_tags_keep_their_bytes() -> None:
    batch = _table(
        to_log_record(make_usage("ид-1", agent_id="客服-bot", tags={"ключ": "значение", "emoji": "🚀"})),
        to_log_record(make_usage("plain", team="équipe")),
    )
    assert batch.request_ids == ["ид-1", "plain"]
    assert batch.table.column("agent_id").to_pylist() == ["客服-bot", "support-bot"]
    assert batch.table.column("team").to_pylist() == ["support", "équipe"]
    assert batch.table.column("tags").to_pylist()[0] == [("ключ", "значение"), ("emoji", "🚀")]


def test_an_empty_batch_is_an_empty_table_of_the_schema() -> None:
    batch = _table()
    assert batch.table.num_rows == 0 and batch.request_ids == []
    assert batch.table.schema.equals(usage_arrow_schema(), check_metadata=True)


def test_a_batch_of_only_irregular_records() -> None:
    irregular = [
        with_attribute(to_log_record(make_usage(f"r{n}")), "cost_usd", AnyValue(int_value=n)) for n in range(3)
    ]
    batch = _table(*irregular)
    assert batch.request_ids == ["r0", "r1", "r2"]
    assert batch.table.column("cost_usd").to_pylist() == [0.0, 1.0, 2.0]
    rejected = [with_attribute(to_log_record(make_usage(f"r{n}")), "team", None) for n in range(3)]
    batch = _table(*rejected)
    assert (batch.table.num_rows, batch.rejected, batch.request_ids) == (0, 3, [])


def test_buffers_grow_past_their_first_size() -> None:
    # Buffers start sized for ~1 KiB records: a long string, many tags and many short records
    # each outgrow theirs.
    huge = to_log_record(make_usage("huge", usage_raw="é" * 100_000, tags={f"k{n}": f"v{n}" for n in range(300)}))
    batch = _table(huge, to_log_record(make_usage("next")))
    assert batch.request_ids == ["huge", "next"]
    assert batch.table.column("usage_raw")[0].as_py() == "é" * 100_000
    assert len(batch.table.column("tags")[0].as_py()) == 300
    short = [_only_required(UsageRecord(**{**_SHORT, "request_id": f"s{n}"})) for n in range(300)]
    assert len(logs_request(*short).SerializeToString()) < 300 * 1024 / 2  # sized for under half of them
    batch = _table(*short)
    assert batch.request_ids == [f"s{n}" for n in range(300)]
    assert batch.table.column("input_tokens").to_pylist() == [0] * 300


def _only_required(record: UsageRecord) -> LogRecord:
    log = to_log_record(record)
    kept = [kv for kv in log.attributes if kv.key in _SHORT]
    del log.attributes[:]
    log.attributes.extend(kept)
    return log


_SHORT: dict[str, Any] = {
    "request_id": "",
    "trace_id": "ab" * 16,
    "span_id": "cd" * 8,
    "ts_start": dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    "ts_end": dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    "latency_ms": 1.0,
    "agent_id": "a",
    "team": "t",
    "operation": "o",
    "model_requested": "m",
    "date": dt.date(2025, 1, 1),
}


def test_columns_never_imported_are_released_and_imported_ones_outlive_the_decoder() -> None:
    body = logs_request(to_log_record(make_usage("a", tags={"k": "v"}))).SerializeToString()
    decoder = native_logs._decoder()
    dropped, _ = decoder.decode(body, lambda where, record: None)
    del dropped  # its release callback frees the buffers pyarrow never took
    columns, ids = decoder.decode(body, lambda where, record: None)
    table = native_logs.columns_table(columns)
    del columns
    assert ids == ["a"] and table.column("tags").to_pylist() == [[("k", "v")]]
    assert native_logs.columns_table(native_logs._decoder().decode(b"", lambda w, r: None)[0]).num_rows == 0


def _decodes(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_the_utf8_validator_agrees_with_python_on_every_lead_and_second_byte() -> None:
    from collector._otlp_native import valid_utf8

    # Every overlong, surrogate and out-of-range case is decided by the first two bytes.
    disagree = [
        bytes([lead, second]) + tail
        for lead in range(256)
        for second in range(256)
        for tail in (b"", b"\x80", b"\x80\x80", b"\x80\x80a")
        if valid_utf8(bytes([lead, second]) + tail) != _decodes(bytes([lead, second]) + tail)
    ]
    assert disagree == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40) | st.text(max_size=20).map(str.encode))
def test_the_utf8_validator_agrees_with_python_on_any_bytes(data: bytes) -> None:
    from collector._otlp_native import valid_utf8

    assert valid_utf8(b"ascii-prefix" + data) == _decodes(data)
