"""The fast column decoder must accept, convert and refuse exactly what `from_log_record` does."""

from __future__ import annotations

import datetime as dt

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from collector.usage_columns import UsageColumns
from meterline.otlp_usage import UsageDecodeError, from_log_record, to_log_record
from meterline.usage_record import usage_table
from tests.collector.otlp_fixtures import make_usage, with_attribute


def test_regular_and_irregular_records_decode_as_from_log_record_does() -> None:
    late = dt.datetime(2025, 3, 15, 23, 59, 59, 999999, tzinfo=dt.UTC)
    logs = [
        to_log_record(make_usage("plain")),
        to_log_record(make_usage("streamed", stream=True, ttft_ms=81.5, tags={}, ts_end=late, date=late.date())),
        with_attribute(to_log_record(make_usage("int-cost")), "cost_usd", AnyValue(int_value=2)),  # the slow path
        with_attribute(to_log_record(make_usage("defaults")), "input_tokens", None),  # a missing column with a default
        with_attribute(to_log_record(make_usage("ids-from-record")), "trace_id", None),  # trace_id from the LogRecord
        with_attribute(to_log_record(make_usage("extra")), "meterline.future_column", AnyValue(string_value="x")),
    ]
    columns = UsageColumns()
    for log in logs:
        columns.add(log)

    expected = usage_table([from_log_record(log) for log in logs])
    assert columns.table().equals(expected)
    assert columns.table().column("cost_usd").to_pylist() == [0.000387, 0.000387, 2.0, 0.000387, 0.000387, 0.000387]
    assert columns.table().column("input_tokens").to_pylist() == [1200, 1200, 1200, 0, 1200, 1200]


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("team", None, "missing required attribute 'team'"),
        ("input_tokens", AnyValue(string_value="many"), "attribute 'input_tokens': expected int, got string_value"),
        ("date", AnyValue(string_value="14/03/2025"), "attribute 'date': Invalid isoformat string"),
        ("request_id", AnyValue(string_value=""), "empty request_id"),
    ],
)
def test_bad_records_are_refused_with_the_same_reason_and_nothing_kept(
    key: str, value: AnyValue | None, says: str
) -> None:
    columns = UsageColumns()
    with pytest.raises(UsageDecodeError) as caught:
        columns.add(with_attribute(to_log_record(make_usage("bad")), key, value))
    assert str(caught.value).startswith(says)
    assert columns.table().num_rows == 0


def test_the_raw_byte_path_decodes_exactly_as_the_message_path() -> None:
    """Protobuf bodies go through `add_raw` (cached KeyValue bytes, scalars read from the bytes);
    JSON bodies through `add`. Twice, so the second pass answers from the cache."""
    from collector.decode import decode_logs
    from collector.wire import Encoding
    from tests.collector.otlp_fixtures import logs_request, otlp_json

    records = [
        to_log_record(make_usage("plain")),
        to_log_record(make_usage("ünïcödé-" + "x" * 200, agent_id="ágent", input_tokens=-5, output_tokens=2**40)),
        to_log_record(make_usage("flags", stream=True, usage_estimated=True, cost_usd=-0.25, latency_ms=0.0)),
        with_attribute(to_log_record(make_usage("int-cost")), "cost_usd", AnyValue(int_value=3)),
        with_attribute(to_log_record(make_usage("bool-as-int")), "stream", AnyValue(int_value=1)),
        with_attribute(to_log_record(make_usage("no-team")), "team", None),
        with_attribute(to_log_record(make_usage("long-key")), "k" * 300, AnyValue(string_value="ignored")),
    ]
    request = logs_request(*records)
    for _ in range(2):
        raw = decode_logs(request.SerializeToString(), Encoding.PROTOBUF)
        message = decode_logs(otlp_json(request), Encoding.JSON)
        assert raw.table is not None and message.table is not None
        assert raw.table.equals(message.table)
        assert (raw.rejected, raw.message) == (message.rejected, message.message)
    assert raw.table is not None
    ids = ["plain", "ünïcödé-" + "x" * 200, "flags", "int-cost", "long-key"]
    assert raw.table.column("request_id").to_pylist() == ids
    assert raw.table.column("output_tokens").to_pylist()[1] == 2**40
    assert raw.rejected == 2  # stream sent as an int; team missing
