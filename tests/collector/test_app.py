from __future__ import annotations

import datetime as dt
import errno
import gzip
import json
import os
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from collector.catalog import open_catalog
from collector.rpc_status import Status
from meterline import semconv
from meterline.layout import DataLayout
from meterline.otlp_usage import to_log_record
from tests.collector.otlp_fixtures import all_files, logs_request, make_usage, otlp_json, read_rows, running_collector

PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}


def _post_usage(client: httpx.Client, *request_ids: str, as_json: bool = False) -> httpx.Response:
    request = logs_request(*(to_log_record(make_usage(i)) for i in request_ids))
    body = otlp_json(request) if as_json else request.SerializeToString()
    return client.post("/v1/logs", content=body, headers=JSON if as_json else PROTOBUF)


def test_sdk_spans_land_in_parquet_and_the_spans_view(tmp_path: Path) -> None:
    with running_collector(tmp_path) as url:
        provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
        exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", compression=Compression.Gzip)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        tracer = provider.get_tracer("tests.collector")
        with tracer.start_as_current_span("agent-run") as root:
            for model, tokens in (("gpt-4o-mini", 100), ("gpt-4o", 250)):
                attributes: dict[str, AttributeValue] = {
                    semconv.GEN_AI_OPERATION_NAME: "chat",
                    semconv.GEN_AI_REQUEST_MODEL: model,
                    semconv.GEN_AI_USAGE_INPUT_TOKENS: tokens,
                    semconv.GEN_AI_USAGE_OUTPUT_TOKENS: tokens // 10,
                    semconv.METERLINE_AGENT_ID: "support-bot",
                    semconv.METERLINE_COST_USD: tokens / 1e6,
                }
                with tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes):
                    pass
        assert provider.force_flush()
        provider.shutdown()

    layout = DataLayout.at(tmp_path)
    trace_id = format(root.get_span_context().trace_id, "032x")
    rows = sorted(read_rows(layout, "spans"), key=lambda r: r["name"])
    assert [(r["name"], r["kind"], r["input_tokens"], r["output_tokens"], r["cost_usd"]) for r in rows] == [
        ("agent-run", "INTERNAL", None, None, None),
        ("chat gpt-4o", "CLIENT", 250, 25, 0.00025),
        ("chat gpt-4o-mini", "CLIENT", 100, 10, 0.0001),
    ]
    root_span_id = format(root.get_span_context().span_id, "016x")
    assert {r["trace_id"] for r in rows} == {trace_id}
    assert [r["parent_span_id"] for r in rows] == [None, root_span_id, root_span_id]
    assert {(r["service_name"], r["scope_name"], r["date"]) for r in rows} == {
        ("support-bot", "tests.collector", rows[0]["ts_start"].date())
    }
    assert json.loads(rows[1]["resource_attributes"])["service.name"] == "support-bot"
    with open_catalog(layout) as con:
        assert con.execute(
            "SELECT count(*), sum(input_tokens), count(DISTINCT trace_id) FROM spans WHERE agent_id = 'support-bot'"
        ).fetchone() == (2, 350, 1)


@pytest.mark.parametrize("as_json", [False, True], ids=["protobuf", "json"])
def test_usage_logs_land_in_the_ledger_exactly(tmp_path: Path, as_json: bool) -> None:
    with running_collector(tmp_path) as url, httpx.Client(base_url=url) as client:
        response = _post_usage(client, "req-1", "req-2", as_json=as_json)

    assert response.status_code == 200
    assert response.headers["content-type"] == ("application/json" if as_json else "application/x-protobuf")
    if as_json:
        assert response.json() == {}
    else:
        assert not ExportLogsServiceResponse.FromString(response.content).HasField("partial_success")
    rows = read_rows(DataLayout.at(tmp_path), "usage")
    assert [r | {"tags": dict(r["tags"])} for r in rows] == [make_usage("req-1").as_row(), make_usage("req-2").as_row()]
    first = rows[0]
    assert (first["input_tokens"], first["output_tokens"], first["cache_read_input_tokens"]) == (1200, 345, 1000)
    assert (first["cost_usd"], first["tags"]) == (0.000387, [("cost_center", "cc-102"), ("tier", "gold")])
    assert first["ts_end"] == dt.datetime(2025, 3, 14, 9, 26, 55, 89793, tzinfo=dt.UTC)
    with open_catalog(DataLayout.at(tmp_path)) as con:
        assert con.execute("SELECT count(*), sum(input_tokens) FROM usage").fetchone() == (2, 2400)


def test_a_request_id_is_written_once_across_retries_and_restarts(tmp_path: Path) -> None:
    with running_collector(tmp_path) as url, httpx.Client(base_url=url) as client:
        assert _post_usage(client, "req-1", "req-1").status_code == 200
        assert _post_usage(client, "req-1", as_json=True).status_code == 200
    with running_collector(tmp_path) as url, httpx.Client(base_url=url) as client:
        assert _post_usage(client, "req-1", "req-2").status_code == 200

    assert sorted(r["request_id"] for r in read_rows(DataLayout.at(tmp_path), "usage")) == ["req-1", "req-2"]
    assert all(p.suffix in (".parquet", ".duckdb") for p in all_files(tmp_path))
    assert len(all_files(tmp_path)) == 3  # two usage files and the catalog: no temp files, no empty files


@pytest.mark.parametrize("as_json", [False, True], ids=["protobuf", "json"])
def test_a_bad_usage_record_is_a_partial_success(tmp_path: Path, as_json: bool) -> None:
    bad = to_log_record(make_usage("req-bad"))
    kept = [kv for kv in bad.attributes if kv.key != "team"]
    del bad.attributes[:]
    bad.attributes.extend(kept)
    request = logs_request(to_log_record(make_usage("req-good")), bad)

    with running_collector(tmp_path) as url, httpx.Client(base_url=url) as client:
        body = otlp_json(request) if as_json else request.SerializeToString()
        response = client.post("/v1/logs", content=body, headers=JSON if as_json else PROTOBUF)

    assert response.status_code == 200
    message = "resource_logs[0].scope_logs[0].log_records[1]: missing required attribute 'team'"
    if as_json:
        assert response.json() == {"partialSuccess": {"rejectedLogRecords": "1", "errorMessage": message}}
    else:
        partial = ExportLogsServiceResponse.FromString(response.content).partial_success
        assert (partial.rejected_log_records, partial.error_message) == (1, message)
    assert [r["request_id"] for r in read_rows(DataLayout.at(tmp_path), "usage")] == ["req-good"]


def test_bad_input_gets_a_clear_status_never_a_500(tmp_path: Path) -> None:
    good = logs_request(to_log_record(make_usage("req-1"))).SerializeToString()
    with running_collector(tmp_path, max_body_bytes=len(good)) as url, httpx.Client(base_url=url) as client:
        garbage = client.post("/v1/traces", content=b"not a protobuf", headers=PROTOBUF)
        bad_json = client.post("/v1/logs", content=b"{oops", headers=JSON)
        too_big = client.post("/v1/logs", content=good + b"\x00", headers=PROTOBUF)
        bomb = client.post("/v1/logs", content=gzip.compress(good * 2), headers=PROTOBUF | {"content-encoding": "gzip"})
        chunked = client.post("/v1/logs", content=iter([good, b"\x00"]), headers=PROTOBUF)
        wrong_type = client.post("/v1/traces", content=b"x", headers={"content-type": "text/plain"})
        wrong_coding = client.post("/v1/traces", content=b"x", headers=PROTOBUF | {"content-encoding": "br"})
        exact_limit = client.post("/v1/logs", content=good, headers=PROTOBUF)

    assert garbage.status_code == 400
    status = Status.FromString(garbage.content)
    assert status.code == 3 and "not a protobuf ExportTraceServiceRequest" in status.message
    assert (bad_json.status_code, bad_json.json()["code"]) == (400, 3)
    assert bad_json.json()["message"].startswith("body is not JSON")
    assert [r.status_code for r in (too_big, bomb, chunked)] == [413, 413, 413]
    assert Status.FromString(too_big.content).message == f"body of {len(good) + 1} bytes exceeds {len(good)} bytes"
    assert (wrong_type.status_code, wrong_type.json()["message"]) == (
        415,
        "unsupported content type 'text/plain'; use application/x-protobuf or application/json",
    )
    assert wrong_coding.status_code == 415
    assert exact_limit.status_code == 200
    assert len(read_rows(DataLayout.at(tmp_path), "usage")) == 1


def test_a_full_disk_is_503_with_retry_after_and_recovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC is injected at the WAL's fdatasync (a test seam: a real tiny filesystem needs root)."""
    real_fdatasync = os.fdatasync
    disk_full = True

    def fdatasync(fd: int) -> None:
        if disk_full:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    with running_collector(tmp_path) as url, httpx.Client(base_url=url) as client:
        refused = _post_usage(client, "req-1")
        health = client.get("/health")
        disk_full = False
        accepted = _post_usage(client, "req-1", "req-2")

    assert (refused.status_code, refused.headers["retry-after"]) == (503, "5")
    status = Status.FromString(refused.content)
    assert status.code == 14 and "No space left on device" in status.message
    assert health.status_code == 200 and health.json() == {"status": "ok", "data_dir": str(tmp_path.resolve())}
    assert accepted.status_code == 200
    assert sorted(r["request_id"] for r in read_rows(DataLayout.at(tmp_path), "usage")) == ["req-1", "req-2"]


def test_a_parquet_failure_keeps_acknowledged_rows_in_the_wal(tmp_path: Path) -> None:
    (tmp_path / "usage").write_text("a file where the usage folder should be")
    with running_collector(tmp_path) as url, httpx.Client(base_url=url) as client:
        assert _post_usage(client, "req-1").status_code == 200  # durable in the WAL
    assert len(list((tmp_path / "wal").glob("wal-*.log"))) == 1
    (tmp_path / "usage").unlink()
    with running_collector(tmp_path) as url, httpx.Client(base_url=url) as client:
        assert _post_usage(client, "req-1", "req-2").status_code == 200

    assert sorted(r["request_id"] for r in read_rows(DataLayout.at(tmp_path), "usage")) == ["req-1", "req-2"]
    assert list((tmp_path / "wal").glob("wal-*.log")) == []


def test_traces_response_is_empty_on_full_success(tmp_path: Path) -> None:
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "ab" * 16, "spanId": "cd" * 8}]}]}]})
    with running_collector(tmp_path) as url, httpx.Client(base_url=url) as client:
        as_json = client.post("/v1/traces", content=body, headers=JSON)
        as_proto = client.post("/v1/traces", content=b"", headers=PROTOBUF)

    assert (as_json.status_code, as_json.json()) == (200, {})
    assert as_proto.status_code == 200
    assert ExportTraceServiceResponse.FromString(as_proto.content) == ExportTraceServiceResponse()
    assert len(read_rows(DataLayout.at(tmp_path), "spans")) == 1


def test_routes_besides_the_two_exports_are_starlettes(tmp_path: Path) -> None:
    """The exports are served ahead of Starlette; other methods and paths still get its answers."""
    body = logs_request(to_log_record(make_usage("req-1"))).SerializeToString()
    with running_collector(tmp_path) as url, httpx.Client(base_url=url) as client:
        wrong_method = client.get("/v1/logs")
        unknown = client.post("/v1/metrics", content=body, headers=PROTOBUF)
        ok = client.post("/v1/logs", content=body, headers=PROTOBUF)
        health = client.get("/health")

    assert (wrong_method.status_code, unknown.status_code, health.status_code) == (405, 404, 200)
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/x-protobuf"
    assert ok.headers["content-length"] == "0" and ok.content == b""
