"""From an agent's response to its trace: an agent instrumented with the OpenTelemetry SDK calls
a real gateway (sending `traceparent`) whose upstream fails and is retried, then falls back;
real gateway and collector processes write the ledger, and `meterline trace <x-request-id>`
shows the agent's spans, the gateway's server span and every attempt in one waterfall."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from opentelemetry import propagate
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from gateway.testing.behaviour import MockBehaviour, ScriptedFailure
from gateway.testing.mock_openai import create_mock_openai
from tests.conftest import free_port
from tests.e2e.processes import cli, meterline_env, meterline_process, stop
from tests.servers import serve_in_thread

pytestmark = pytest.mark.e2e

AGENT_KEY = "key-support-bot-traces-e2e-0123"
PROVIDER_KEY = "sk-mock-provider-traces-e2e"


@pytest.fixture(scope="module")
def behaviour() -> MockBehaviour:
    return MockBehaviour(accepted_keys={PROVIDER_KEY}, record=False)


@pytest.fixture(scope="module")
def provider(behaviour: MockBehaviour) -> Iterator[str]:
    with serve_in_thread(create_mock_openai(behaviour)) as url:
        yield url


def _agent_call(tracer: otel_trace.Tracer, client: openai.OpenAI, ticket: str) -> str:
    """One agent step: its own spans around a gateway call that carries `traceparent`."""
    with tracer.start_as_current_span("handle ticket", attributes={"ticket.id": ticket}):
        with tracer.start_as_current_span("call llm", kind=otel_trace.SpanKind.CLIENT):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            raw = client.chat.completions.with_raw_response.create(
                model="gpt", messages=[{"role": "user", "content": f"ticket {ticket}"}], extra_headers=headers
            )
        with tracer.start_as_current_span("post reply"):
            pass
    return raw.headers["x-request-id"]


def test_a_response_header_leads_to_its_whole_trace(tmp_path: Path, provider: str, behaviour: MockBehaviour) -> None:
    data, collector_port, gateway_port = tmp_path / "data", free_port(), free_port()
    config = tmp_path / "meterline.yaml"
    config.write_text(
        f"""
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{provider}/v1", api_key: {PROVIDER_KEY}}}
  - model_name: backup
    litellm_params: {{model: openai/gpt-4o, api_base: "{provider}/v1", api_key: {PROVIDER_KEY}}}
router_settings: {{num_retries: 1, fallbacks: [{{gpt: [backup]}}]}}
agents:
  - {{id: support-bot, team: support, key: {AGENT_KEY}}}
telemetry: {{collector: "http://127.0.0.1:{collector_port}", export_interval_ms: 100}}
"""
    )
    env = meterline_env()
    shared = ["--config", str(config), "--data-dir", str(data)]
    spans = TracerProvider(resource=Resource.create({"service.name": "support-agent"}))
    spans.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{collector_port}/v1/traces"))
    )
    tracer = spans.get_tracer("support-agent")
    with (
        meterline_process([*shared, "collector", "--port", str(collector_port), "--grpc-port", "0"], tmp_path, env,
                          f"http://127.0.0.1:{collector_port}/health") as collector,
        meterline_process([*shared, "gateway", "--port", str(gateway_port)], tmp_path, env,
                          f"http://127.0.0.1:{gateway_port}/health/readiness") as gateway,
    ):  # fmt: skip
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{gateway_port}/v1", api_key=AGENT_KEY, max_retries=0)
        behaviour.fail_next(ScriptedFailure(500))
        retried = _agent_call(tracer, client, "T-1")
        behaviour.fail_next(ScriptedFailure(503), ScriptedFailure(503))
        fell_back = _agent_call(tracer, client, "T-2")
        spans.shutdown()
        assert stop(gateway) == 0  # drains its telemetry to the collector
        assert stop(collector) == 0

    shared = ["--config", str(config), "--data-dir", str(data)]
    document = json.loads(cli([*shared, "trace", retried, "--format", "json"], tmp_path, env))
    assert [(s["depth"], s["name"], s["kind"], s["service_name"], s["role"]) for s in document["spans"]] == [
        (0, "handle ticket", "INTERNAL", "support-agent", None),
        (1, "call llm", "CLIENT", "support-agent", None),
        (2, "chat gpt", "SERVER", "meterline-gateway", None),
        (3, "chat gpt-4o-mini", "CLIENT", "meterline-gateway", "attempt 1"),
        (3, "chat gpt-4o-mini", "CLIENT", "meterline-gateway", "retry"),
        (1, "post reply", "INTERNAL", "support-agent", None),
    ]
    server = document["spans"][2]
    assert server["usage"]["request_id"] == retried and server["usage"]["attempts"] == 2
    assert document["spans"][3]["attributes"]["http.response.status_code"] == 500
    assert document["usage"] == [server["usage"]]

    text = cli([*shared, "trace", fell_back], tmp_path, env)
    roles = [line.split("[meterline-gateway, CLIENT, ")[1] for line in text.splitlines() if ", CLIENT, " in line]
    assert roles == ["attempt 1, ERROR]", "retry, ERROR]", "fallback]"]
    assert "handle ticket [support-agent, INTERNAL]" in text and f"<- {fell_back}" in text

    found = json.loads(cli([*shared, "traces", "--since", "1h", "--format", "json"], tmp_path, env))
    assert [r["request_ids"] for r in found] == [[fell_back], [retried]]
    assert [r["models"] for r in found] == [["gpt", "gpt-4o", "gpt-4o-mini"], ["gpt", "gpt-4o-mini"]]
    everything = cli([*shared, "sql", "SELECT * FROM spans", "--format", "json"], tmp_path, env)
    everything += cli([*shared, "sql", "SELECT * FROM usage", "--format", "json"], tmp_path, env)
    assert AGENT_KEY not in everything + text and PROVIDER_KEY not in everything + text
