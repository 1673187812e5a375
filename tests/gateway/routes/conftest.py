"""A gateway under uvicorn in front of the mock OpenAI and Anthropic providers, configured the
way LiteLLM's docs write a `model_list`: each OpenAI model group twice, once on the direct path
and once (`model_info.meterline_upstream: litellm`) through LiteLLM's translation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from gateway.app import create_app
from gateway.pricing import PriceBook
from gateway.telemetry.sink import InMemorySink
from gateway.testing import MockBehaviour, create_mock_anthropic, create_mock_openai
from gateway.token_usage import TokenUsage
from meterline.config import parse_config
from meterline.usage_record import UsageRecord
from tests.servers import serve_in_thread

OPENAI_KEY = "sk-openai-provider-secret-1234"
ANTHROPIC_KEY = "sk-ant-provider-secret-5678"
AGENT_KEY = "agent-key-support-0123456"
LIMITED_KEY = "agent-key-limited-0123456"
REPLY = "Hello from the mock provider."  # 5 words: 5 tokens by the mocks' rule
PRICES = PriceBook()
PATHS = ["direct", "litellm"]

CONFIG = """
model_list:
{groups}
  - model_name: claude
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_base: {anthropic}
      api_key: {anthropic_key}
router_settings:
  num_retries: 2
  retry_after: 0
agents:
  - id: support-bot
    team: support
    key: {agent_key}
  - id: limited-bot
    team: research
    key: {limited_key}
    models: [claude]
"""

GROUP = """
  - model_name: {name}
    litellm_params:
      model: openai/{model}
      api_base: {openai}/v1
      api_key: {openai_key}
    model_info: {info}
"""

# model group (direct path) -> the provider's model
OPENAI_GROUPS = {"chat": "gpt-4o-mini", "instruct": "gpt-3.5-turbo-instruct", "embed": "text-embedding-3-small"}


# The script fields a test may change; each test starts from their defaults.
FRESH_FIELDS = (
    "cached_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "omit_usage",
    "latency_s",
    "stream_delay_s",
    "abort_stream_after",
)


def group(name: str, path: str) -> str:
    """The model group of `name` on `path` (direct or litellm)."""
    return name if path == "direct" else f"{name}-litellm"


@dataclass
class Stack:
    url: str
    openai: MockBehaviour
    anthropic: MockBehaviour
    sink: InMemorySink

    @property
    def record(self) -> UsageRecord:
        [record] = self.sink.records
        return record


def cost(model: str, provider: str, usage: TokenUsage) -> float:
    return PRICES.cost_usd(model, provider, usage)


@pytest.fixture(scope="module")
def mock_providers() -> Iterator[tuple[str, MockBehaviour, str, MockBehaviour]]:
    openai_mock = MockBehaviour(accepted_keys={OPENAI_KEY}, reply=REPLY)
    anthropic_mock = MockBehaviour(accepted_keys={ANTHROPIC_KEY}, reply=REPLY)
    with (
        serve_in_thread(create_mock_openai(openai_mock)) as openai_url,
        serve_in_thread(create_mock_anthropic(anthropic_mock)) as anthropic_url,
    ):
        yield openai_url, openai_mock, anthropic_url, anthropic_mock


@pytest.fixture(scope="module")
def endpoint_gateway(
    mock_providers: tuple[str, MockBehaviour, str, MockBehaviour],
) -> Iterator[tuple[str, InMemorySink]]:
    openai_url, _, anthropic_url, _ = mock_providers
    groups = "".join(
        GROUP.format(name=group(name, path), model=model, openai=openai_url, openai_key=OPENAI_KEY, info=info)
        for name, model in OPENAI_GROUPS.items()
        for path, info in (("direct", "{}"), ("litellm", "{meterline_upstream: litellm}"))
    )
    text = CONFIG.format(
        groups=groups.rstrip("\n"),
        anthropic=anthropic_url,
        anthropic_key=ANTHROPIC_KEY,
        agent_key=AGENT_KEY,
        limited_key=LIMITED_KEY,
    )
    sink = InMemorySink()
    with serve_in_thread(create_app(parse_config(text, "test", environ={}), sink=sink)) as url:
        yield url, sink


@pytest.fixture
def stack(
    mock_providers: tuple[str, MockBehaviour, str, MockBehaviour], endpoint_gateway: tuple[str, InMemorySink]
) -> Iterator[Stack]:
    """The module's servers, with fresh mock scripts and an empty sink for each test."""
    _, openai_mock, _, anthropic_mock = mock_providers
    url, sink = endpoint_gateway
    for mock in (openai_mock, anthropic_mock):
        fresh = MockBehaviour(accepted_keys=set(mock.accepted_keys), reply=REPLY)
        for name in FRESH_FIELDS:
            setattr(mock, name, getattr(fresh, name))
        mock.failures.clear()
        mock.requests.clear()
    sink.records.clear()
    sink.spans.clear()
    yield Stack(url, openai_mock, anthropic_mock, sink)
    assert not any(secret in repr(r) for r in sink.records for secret in (OPENAI_KEY, ANTHROPIC_KEY))
