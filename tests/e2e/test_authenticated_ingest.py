"""Authenticated ingest with real processes: the bind rule, TLS on both OTLP listeners, and a
gateway whose exporter sends its token to a TLS collector that refuses everyone else."""

from __future__ import annotations

import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import httpx
import openai
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from meterline.defaults import DEMO_KEYS
from meterline.layout import DataLayout
from tests.collector.otlp_fixtures import logs_request, read_rows
from tests.collector.test_auth import believable, request_id
from tests.conftest import free_port
from tests.e2e.processes import meterline_env, stop, wait_http_ok
from tests.tls import TlsFiles, self_signed

pytestmark = pytest.mark.e2e

GATEWAY_TOKEN = "gw-ingest-token-4f1d9c0b7a2e8e55"
AGENT_TOKEN = "agent-ingest-token-93be0d1c44a7f0a2"
TOKENS_ENV = {"GATEWAY_INGEST_TOKEN": GATEWAY_TOKEN, "AGENT_INGEST_TOKEN": AGENT_TOKEN}

DEMO_MODEL = """
model_list:
  - model_name: demo
    litellm_params: {model: openai/gpt-4o-mini, mock_response: "Hello from the demo model."}
agents:
  - {id: support-bot, team: support, key: demo-key-support-bot}
"""


def _collector_section(tls: TlsFiles) -> str:
    return f"""
collector:
  ingest_tokens:
    - {{name: gateways, token: os.environ/GATEWAY_INGEST_TOKEN, scopes: [usage, spans]}}
    - {{name: research-agent, token: os.environ/AGENT_INGEST_TOKEN, scopes: [spans]}}
  tls: {{cert_file: {tls.cert_file}, key_file: {tls.key_file}}}
"""


@contextmanager
def _process(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "meterline", *args], cwd=cwd, env=env, stderr=out, stdout=out)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meterline", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _wait_https(url: str, process: subprocess.Popen[bytes], ca_file: Path) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1.0, verify=ssl.create_default_context(cafile=ca_file)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


def test_a_collector_without_tokens_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    (tmp_path / "meterline.yaml").write_text("storage: {data_dir: ./data}\n")
    port = str(free_port())
    done = _run(["collector", "--host", "0.0.0.0", "--port", port, "--grpc-port", "0"], tmp_path, meterline_env())

    assert done.returncode == 2
    assert done.stderr == (
        "meterline: error: meterline.yaml: collector.allow_unauthenticated: refusing to serve the collector on "
        "0.0.0.0, not a loopback address, without authentication (anyone who could reach it may write usage "
        "records into the ledger); configure collector.ingest_tokens, bind 127.0.0.1, or set "
        "collector.allow_unauthenticated: true\n"
    )
    assert not (tmp_path / "data").exists()


def test_the_dashboard_refuses_a_non_loopback_address_without_its_allow_flag(tmp_path: Path) -> None:
    (tmp_path / "meterline.yaml").write_text("storage: {data_dir: ./data}\n")
    done = _run(["dashboard", "--host", "0.0.0.0", "--port", str(free_port())], tmp_path, meterline_env())

    assert done.returncode == 2
    assert done.stderr.startswith(
        "meterline: error: meterline.yaml: dashboard.allow_unauthenticated: refusing to serve the dashboard on "
        "0.0.0.0, not a loopback address, without authentication (anyone who could reach it may read every "
        "agent's spend)"
    )


def test_allow_unauthenticated_serves_any_address_with_a_loud_warning(tmp_path: Path) -> None:
    (tmp_path / "meterline.yaml").write_text("storage: {data_dir: ./data}\ncollector: {allow_unauthenticated: true}\n")
    port = free_port()
    log = tmp_path / "collector.log"
    args = ["collector", "--host", "0.0.0.0", "--port", str(port), "--grpc-port", "0"]
    with _process(args, tmp_path, meterline_env(), log) as collector:
        wait_http_ok(f"http://127.0.0.1:{port}/health", collector)
        rid = request_id()
        body = logs_request(believable(rid)).SerializeToString()
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/logs", content=body, headers={"content-type": "application/x-protobuf"}
        )
        assert response.status_code == 200
        assert stop(collector) == 0

    warnings = [line for line in log.read_text().splitlines() if "UNAUTHENTICATED" in line]
    assert len(warnings) == 1
    assert warnings[0].endswith(
        "WARNING meterline.bind: UNAUTHENTICATED collector on 0.0.0.0 (collector.allow_unauthenticated: true): "
        "anyone who can reach it may write usage records into the ledger"
    )
    assert [r["request_id"] for r in read_rows(DataLayout.at(tmp_path / "data"), "usage")] == [rid]


def test_tokens_allow_any_address_and_plain_http_beyond_loopback_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "meterline.yaml").write_text(
        "storage: {data_dir: ./data}\ncollector:\n  ingest_tokens:\n"
        "    - {name: agents, token: os.environ/AGENT_INGEST_TOKEN, scopes: [spans]}\n"
    )
    port = free_port()
    log = tmp_path / "collector.log"
    args = ["collector", "--host", "0.0.0.0", "--port", str(port), "--grpc-port", "0"]
    with _process(args, tmp_path, meterline_env(**TOKENS_ENV), log) as collector:
        wait_http_ok(f"http://127.0.0.1:{port}/health", collector)
        assert stop(collector) == 0

    text = log.read_text()
    assert "collector: bearer tokens arrive in clear text on 0.0.0.0; set collector.tls" in text
    assert "UNAUTHENTICATED" not in text and AGENT_TOKEN not in text


def _sdk_span(exporter: SpanExporter, name: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "research-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests.e2e.ingest").start_as_current_span(name):
        pass
    provider.shutdown()


def test_otel_sdks_export_over_tls_on_http_and_grpc_with_a_spans_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests lets these override the exporter's `certificate_file` (its session-level verify).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    tls = self_signed(tmp_path / "tls")
    (tmp_path / "meterline.yaml").write_text("storage: {data_dir: ./data}\n" + _collector_section(tls))
    port, grpc_port = free_port(), free_port()
    log = tmp_path / "collector.log"
    env = meterline_env(**TOKENS_ENV)
    # With tokens, a non-loopback address is allowed.
    args = ["collector", "--host", "0.0.0.0", "--port", str(port), "--grpc-port", str(grpc_port)]
    ca = tls.ca_file.read_bytes()
    with _process(args, tmp_path, env, log) as collector:
        _wait_https(f"https://127.0.0.1:{port}/health", collector, tls.ca_file)
        _sdk_span(
            HttpSpanExporter(
                endpoint=f"https://127.0.0.1:{port}/v1/traces",
                certificate_file=str(tls.ca_file),
                headers={"Authorization": f"Bearer {AGENT_TOKEN}"},
            ),
            "over https",
        )
        _sdk_span(
            GrpcSpanExporter(
                endpoint=f"127.0.0.1:{grpc_port}",
                credentials=grpc.ssl_channel_credentials(root_certificates=ca),
                headers={"authorization": f"Bearer {AGENT_TOKEN}"},
            ),
            "over grpc tls",
        )
        credentials = grpc.ssl_channel_credentials(root_certificates=ca)
        with (
            grpc.secure_channel(f"127.0.0.1:{grpc_port}", credentials) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            TraceServiceStub(channel).Export(ExportTraceServiceRequest(), timeout=10)  # type: ignore[no-untyped-call]
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS listener gets no OTLP answer
            httpx.post(f"http://127.0.0.1:{port}/v1/traces", content=b"", headers={"authorization": AGENT_TOKEN})
        assert stop(collector) == 0

    spans = read_rows(DataLayout.at(tmp_path / "data"), "spans")
    assert sorted((s["name"], s["service_name"]) for s in spans) == [
        ("over grpc tls", "research-agent"),
        ("over https", "research-agent"),
    ]
    text = log.read_text()
    assert "OTLP/HTTP on https://0.0.0.0" in text and "2 principal(s) by bearer token" in text
    assert AGENT_TOKEN not in text and GATEWAY_TOKEN not in text


def test_the_gateway_exports_with_its_token_to_a_tls_collector_that_refuses_forgeries(tmp_path: Path) -> None:
    tls = self_signed(tmp_path / "tls")
    collector_port, gateway_port = free_port(), free_port()
    (tmp_path / "meterline.yaml").write_text(
        DEMO_MODEL
        + "storage: {data_dir: ./data}\n"
        + f"telemetry: {{collector: 'https://127.0.0.1:{collector_port}', collector_token: "
        + f"os.environ/GATEWAY_INGEST_TOKEN, collector_ca_file: {tls.ca_file}}}\n"
        + _collector_section(tls)
    )
    env = meterline_env(**TOKENS_ENV)
    collector_log, gateway_log = tmp_path / "collector.log", tmp_path / "gateway.log"
    collector_args = ["collector", "--port", str(collector_port), "--grpc-port", "0"]
    with (
        _process(collector_args, tmp_path, env, collector_log) as collector,
        _process(["gateway", "--port", str(gateway_port)], tmp_path, env, gateway_log) as gateway,
    ):
        _wait_https(f"https://127.0.0.1:{collector_port}/health", collector, tls.ca_file)
        wait_http_ok(f"http://127.0.0.1:{gateway_port}/health/readiness", gateway)
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{gateway_port}/v1", api_key=DEMO_KEYS["support-bot"], max_retries=0
        )
        for i in range(6):
            answer = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": f"q{i}"}])
            assert answer.usage is not None
        forged_id = request_id()
        forged = logs_request(believable(forged_id, cost_usd=1234.50)).SerializeToString()
        refused = [
            httpx.post(
                f"https://127.0.0.1:{collector_port}/v1/logs",
                content=forged,
                headers={"content-type": "application/x-protobuf", **auth},
                verify=ssl.create_default_context(cafile=tls.ca_file),
            ).status_code
            for auth in ({}, {"authorization": "Bearer not-a-token-of-anyone-at-all"})
        ]
        spans_only = httpx.post(
            f"https://127.0.0.1:{collector_port}/v1/logs",
            content=forged,
            headers={"content-type": "application/x-protobuf", "authorization": f"Bearer {AGENT_TOKEN}"},
            verify=ssl.create_default_context(cafile=tls.ca_file),
        )
        assert stop(gateway) == 0  # drains: the spool reaches the collector before it exits
        assert stop(collector) == 0

    assert refused == [401, 401]
    assert spans_only.status_code == 200
    layout = DataLayout.at(tmp_path / "data")
    usage = read_rows(layout, "usage")
    assert len(usage) == 6
    assert {r["agent_id"] for r in usage} == {"support-bot"}
    assert forged_id not in {r["request_id"] for r in usage}
    assert sum(r["cost_usd"] for r in usage) < 0.01
    assert len([s for s in read_rows(layout, "spans") if s["name"] == "chat demo"]) == 6
    for log in (collector_log, gateway_log):
        text = log.read_text()
        assert GATEWAY_TOKEN not in text and AGENT_TOKEN not in text
    assert "telemetry: collector" not in gateway_log.read_text()  # no refused or failed export
