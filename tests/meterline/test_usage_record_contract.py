"""One record definition drives the gateway's output, the Parquet columns and the analytics input."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pyarrow as pa

from meterline.otlp_usage import from_log_record, to_log_record
from meterline.usage_record import SCHEMA_VERSION, USAGE_COLUMNS, UsageRecord, usage_arrow_schema, usage_table


def sample() -> UsageRecord:
    start = dt.datetime(2026, 11, 23, 9, 30, 0, 123456, tzinfo=dt.UTC)
    return UsageRecord(
        request_id="req_1",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id="00f067aa0ba902b7",
        ts_start=start,
        ts_end=start + dt.timedelta(milliseconds=250),
        latency_ms=250.0,
        agent_id="support-bot",
        team="support",
        operation="chat",
        model_requested="demo",
        date=start.date(),
        ttft_ms=40.5,
        project="helpdesk",
        tags={"cost_center": "cc-102"},
        model="gpt-4o-mini",
        provider="openai",
        stream=True,
        input_tokens=1200,
        output_tokens=300,
        cache_read_input_tokens=1024,
        reasoning_output_tokens=0,
        usage_raw='{"prompt_tokens":1200}',
        cost_usd=0.0003123,
        price_version="litellm-1.106.2+abc",
    )


def test_arrow_schema_has_exactly_the_record_fields() -> None:
    schema = usage_arrow_schema()
    assert tuple(schema.names) == USAGE_COLUMNS == tuple(f.name for f in dataclasses.fields(UsageRecord))
    assert schema.metadata == {b"meterline.usage.schema_version": str(SCHEMA_VERSION).encode()}
    assert schema.field("ts_start").type == pa.timestamp("us", tz="UTC")
    assert schema.field("tags").type == pa.map_(pa.string(), pa.string())
    assert schema.field("input_tokens").type == pa.int64()
    assert not schema.field("request_id").nullable
    assert schema.field("ttft_ms").nullable


def test_otlp_round_trip_keeps_every_column_exactly() -> None:
    record = sample()
    assert from_log_record(to_log_record(record)) == record.as_row()


def test_rows_from_the_wire_fit_the_parquet_schema() -> None:
    row = from_log_record(to_log_record(sample()))
    table = usage_table([row])
    assert table.schema.equals(usage_arrow_schema(), check_metadata=True)
    assert table.num_rows == 1
    assert table.column("tags").to_pylist() == [[("cost_center", "cc-102")]]
    assert table.column("cost_usd").to_pylist() == [0.0003123]


def test_analytics_reads_exactly_the_ledger_columns() -> None:
    from analytics.ledger import usage_schema

    assert tuple(usage_schema().names()) == USAGE_COLUMNS
