from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from gateway.app import create_app
from gateway.telemetry.sink import InMemorySink
from meterline.config import MeterlineConfig, load_config
from tests.servers import serve_in_thread

SUPPORT_KEY = "demo-key-support-bot"
RESEARCH_KEY = "demo-key-research-agent"


@pytest.fixture(scope="session")
def embedded_config() -> MeterlineConfig:
    config, _ = load_config(None)
    return config


@pytest.fixture
def sink() -> InMemorySink:
    return InMemorySink()


@pytest.fixture
def gateway_url(embedded_config: MeterlineConfig, sink: InMemorySink) -> Iterator[str]:
    with serve_in_thread(create_app(embedded_config, sink=sink)) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url) as http:
        yield http


def sdk(gateway_url: str, key: str = SUPPORT_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0)


@pytest.fixture
def openai_client(gateway_url: str) -> openai.OpenAI:
    """The official SDK over real HTTP to the gateway."""
    return sdk(gateway_url)
