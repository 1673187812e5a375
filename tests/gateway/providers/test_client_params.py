"""A client cannot steer LiteLLM: connection, credential and mock fields never pass through."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.app import create_app
from gateway.providers.client_params import for_litellm
from gateway.telemetry.sink import InMemorySink
from gateway.testing.behaviour import MockBehaviour
from gateway.testing.mock_openai import create_mock_openai
from meterline.config import parse_config
from tests.servers import serve_in_thread


def test_reserved_fields_are_dropped_and_provider_parameters_kept() -> None:
    params = {
        "temperature": 0.1,
        "tools": [],
        "api_base": "http://attacker.test",
        "api_key": "stolen",
        "mock_response": "free",
        "litellm_logging_obj": 1,
        "aws_region_name": "x",
        "metadata": {"a": 1},
        "extra_headers": {"x": "y"},
    }
    assert for_litellm(params) == {"temperature": 0.1, "tools": []}


@pytest.fixture
def stack() -> Iterator[tuple[httpx.Client, MockBehaviour, InMemorySink]]:
    behaviour = MockBehaviour(accepted_keys={"sk-mock"})
    sink = InMemorySink()
    with serve_in_thread(create_mock_openai(behaviour)) as provider:
        config = parse_config(
            f"""
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{provider}/v1", api_key: sk-mock}}
    model_info: {{meterline_upstream: litellm}}
agents:
  - {{id: sneaky, team: t, key: agent-key-sneaky-bot}}
""",
            "params.yaml",
            environ={},
        )
        with serve_in_thread(create_app(config, sink=sink)) as url, httpx.Client(base_url=url) as client:
            yield client, behaviour, sink


def test_a_client_cannot_get_a_free_mock_answer_or_redirect_the_call(
    stack: tuple[httpx.Client, MockBehaviour, InMemorySink],
) -> None:
    client, behaviour, sink = stack
    body = {
        "model": "gpt",
        "messages": [{"role": "user", "content": "hi"}],
        "mock_response": "free lunch",
        "api_base": "http://127.0.0.1:9/v1",
    }
    response = client.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer agent-key-sneaky-bot"})
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == behaviour.reply
    assert len(behaviour.requests) == 1  # the real provider answered, at the deployment's address
    assert "mock_response" not in behaviour.requests[0].body
    assert sink.records[0].cost_usd > 0
