"""Builders for OTLP requests and a real collector on a background thread, shared by the tests."""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import uvicorn
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from collector.app import create_app
from collector.settings import CollectorSettings
from meterline.layout import DataLayout
from meterline.record_limits import RecordLimits
from meterline.usage_record import UsageRecord

UTC = dt.UTC
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"


FIXTURE_LIMITS = RecordLimits(request_id_pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", max_past_days=36_500)
"""What `running_collector` checks records against unless told otherwise: the default limits,
except that `make_usage`'s fixed 2025 timestamps and short ids ("req-1") pass; the quarantine
tests use the real defaults."""


def make_usage(request_id: str, **overrides: Any) -> UsageRecord:
    start = dt.datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
    fields: dict[str, Any] = {
        "request_id": request_id,
        "trace_id": TRACE_ID,
        "span_id": SPAN_ID,
        "ts_start": start,
        "ts_end": start + dt.timedelta(milliseconds=1500),
        "latency_ms": 1500.0,
        "agent_id": "support-bot",
        "team": "support",
        "operation": "chat",
        "model_requested": "gpt-4o-mini",
        "date": start.date(),
        "project": "helpdesk",
        "tags": {"cost_center": "cc-102", "tier": "gold"},
        "model": "gpt-4o-mini-2024-07-18",
        "provider": "openai",
        "input_tokens": 1200,
        "output_tokens": 345,
        "cache_read_input_tokens": 1000,
        "cost_usd": 0.000387,
        "price_version": "litellm-1.106.2",
    }
    fields.update(overrides)
    return UsageRecord(**fields)


def gateway_id(n: int) -> str:
    """The n-th request id in the gateway's own format (`req_` + 32 hex)."""
    return f"req_{n:032x}"


def current_usage(n: int, **overrides: Any) -> UsageRecord:
    """`make_usage` as a gateway would send it now: its id format, timestamps of this second
    (so the default `collector.validation` limits take it)."""
    start = overrides.pop("ts_start", dt.datetime.now(UTC).replace(microsecond=0))
    fields: dict[str, Any] = {
        "ts_start": start,
        "ts_end": start + dt.timedelta(milliseconds=1500),
        "date": start.date(),
    }
    return make_usage(gateway_id(n), **{**fields, **overrides})


def logs_request(*records: LogRecord) -> ExportLogsServiceRequest:
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="gw"))]),
                scope_logs=[ScopeLogs(scope=InstrumentationScope(name="meterline.gateway"), log_records=records)],
            )
        ]
    )


def _ids_to_hex(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            _ids_to_hex(item)


def otlp_json(message: Any) -> bytes:
    """The OTLP/JSON encoding: the protobuf JSON mapping with hex trace and span ids."""
    document = json_format.MessageToDict(message)
    _ids_to_hex(document)
    return json.dumps(document).encode()


def read_rows(layout: DataLayout, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(layout.table_dir(table).glob("date=*/*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def all_files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


@contextmanager
def running_collector(
    data_dir: Path, max_body_bytes: int | None = None, grpc_port: int = 0, **settings_fields: Any
) -> Iterator[str]:
    """A real uvicorn server on a free port in a thread (with OTLP/gRPC on `grpc_port` unless
    it is 0); yields its base URL. `settings_fields` are further CollectorSettings fields."""
    settings_fields.setdefault("validation", FIXTURE_LIMITS)
    settings = CollectorSettings(data_dir=data_dir, grpc_port=grpc_port, **settings_fields)
    if max_body_bytes:
        settings = settings.model_copy(update={"max_body_bytes": max_body_bytes})
    # Listening before uvicorn starts means clients simply queue until it is ready: no polling.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), lifespan="on", log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    if grpc_port:
        # HTTP clients queue on the listening socket; the gRPC port opens only in the lifespan.
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "collector thread did not stop"


def with_attribute(log: LogRecord, key: str, value: AnyValue | None) -> LogRecord:
    """`log` with attribute `key` replaced by `value` (or removed when None), for irregular records."""
    kept = [kv for kv in log.attributes if kv.key != key]
    if value is not None:
        kept.append(KeyValue(key=key, value=value))
    del log.attributes[:]
    log.attributes.extend(kept)
    return log
