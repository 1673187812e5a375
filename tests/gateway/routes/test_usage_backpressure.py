"""A gateway whose exporter cannot keep another usage record (spool full, memory backlog full)
refuses new model calls with 503 instead of serving requests it could not bill."""

from __future__ import annotations

import httpx

from gateway.app import create_app
from gateway.telemetry.sink import InMemorySink
from gateway.testing.behaviour import MockBehaviour
from gateway.testing.mock_openai import create_mock_openai
from meterline.config import parse_config
from tests.servers import serve_in_thread

KEY = "agent-key-backpressure-0123"


class FullSink(InMemorySink):
    def __init__(self) -> None:
        super().__init__()
        self.full = True

    @property
    def accepting(self) -> bool:
        return not self.full


def test_a_full_usage_backlog_answers_503_until_there_is_room() -> None:
    sink = FullSink()
    body = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
    with serve_in_thread(create_mock_openai(MockBehaviour(accepted_keys={"sk-mock"}))) as provider:
        config = parse_config(
            f"""
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{provider}/v1", api_key: sk-mock}}
agents:
  - {{id: bp-bot, team: a, key: {KEY}}}
""",
            "backpressure.yaml",
            environ={},
        )
        with serve_in_thread(create_app(config, sink=sink)) as url, httpx.Client(base_url=url, timeout=30) as client:
            refused = client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
            sink.full = False
            served = client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "not_ready"
    assert "usage spool is full" in refused.json()["error"]["message"]
    assert served.status_code == 200
    assert [(r.http_status, r.cost_usd > 0) for r in sink.records] == [(503, False), (200, True)]
