"""The gateway's token count: exact, and never on the event loop for long text (a 9 MB prompt of
one repeated character took the tokenizer 12 s, and every other request waited that long)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

import gateway.tokens as tokens
from gateway.app import create_app
from gateway.telemetry.sink import InMemorySink
from gateway.testing.behaviour import MockBehaviour
from gateway.testing.mock_openai import create_mock_openai
from gateway.tokens import INLINE_CHARS, count_messages, count_messages_off_loop, count_text, off_loop
from meterline.config import parse_config
from meterline.defaults import DEFAULT_CONFIG_YAML, DEMO_KEYS
from tests.servers import serve_in_thread

KEY = "agent-key-tokens-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


class SpyEncoding:
    """The real encoding, noting for each text whether an event loop ran in the encoding
    thread; a text longer than INLINE_CHARS waits for `gate` before it is encoded."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.real = tokens._encoding()
        self.gate = gate
        self.long_started = threading.Event()
        self.calls: list[tuple[int, bool]] = []

    def encode(self, text: str, **kwargs: Any) -> list[int]:
        on_loop = asyncio._get_running_loop() is not None
        self.calls.append((len(text), on_loop))
        if len(text) > INLINE_CHARS and self.gate is not None:
            self.long_started.set()
            self.gate.wait(20)
        return list(self.real.encode(text, **kwargs))


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> SpyEncoding:
    encoding = SpyEncoding(threading.Event())
    monkeypatch.setattr(tokens, "_encoding", lambda: encoding)
    return encoding


def test_the_count_is_exact_and_long_text_is_counted_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    short = [{"role": "user", "content": "a" * INLINE_CHARS}]
    long = [{"role": "user", "content": "a" * (INLINE_CHARS + 1)}]
    expected = (count_messages(short), count_messages(long))
    encoding = SpyEncoding()
    monkeypatch.setattr(tokens, "_encoding", lambda: encoding)

    async def count() -> tuple[int, int]:
        return await count_messages_off_loop(short), await count_messages_off_loop(long)

    assert asyncio.run(count()) == expected
    assert encoding.calls == [(INLINE_CHARS, True), (INLINE_CHARS + 1, False)]
    text = "b" * 100_000
    assert asyncio.run(off_loop(lambda: count_text(text), len(text))) == tokens._encoding().real.encode(text).__len__()
    assert encoding.calls[-1] == (100_000, False)


@pytest.fixture(params=["direct", "litellm"])
def gateway(request: pytest.FixtureRequest) -> Iterator[tuple[httpx.Client, InMemorySink]]:
    behaviour = MockBehaviour(accepted_keys={"sk-mock"}, reply="The keeper lit the lamp.", omit_usage=True)
    sink = InMemorySink()
    info = "{meterline_upstream: litellm}" if request.param == "litellm" else "{}"
    with serve_in_thread(create_mock_openai(behaviour)) as provider:
        config = parse_config(
            f"""
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{provider}/v1", api_key: sk-mock}}
    model_info: {info}
agents:
  - {{id: story-bot, team: fiction, key: {KEY}}}
""",
            "tokens.yaml",
            environ={},
        )
        with serve_in_thread(create_app(config, sink=sink)) as url, httpx.Client(base_url=url, timeout=10) as client:
            yield client, sink


@pytest.mark.parametrize("stream", [False, True])
def test_a_tiny_request_is_answered_while_a_long_prompt_is_counted(
    gateway: tuple[httpx.Client, InMemorySink], spy: SpyEncoding, stream: bool
) -> None:
    """The provider reports no usage, so the gateway counts a 50,000-character prompt; the
    count waits until a tiny request has been answered, which it only can be if the event
    loop is not the thread counting."""
    client, sink = gateway
    long = [{"role": "user", "content": "a" * 50_000}]
    expected = len(spy.real.encode("a" * 50_000)) + 3 + 3
    assert spy.gate is not None
    with ThreadPoolExecutor(1) as pool:
        body = {"model": "gpt", "messages": long, "stream": stream}
        big = pool.submit(client.post, "/v1/chat/completions", json=body, headers=AUTH)
        assert spy.long_started.wait(20)
        hello = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
        tiny = client.post("/v1/chat/completions", json=hello, headers=AUTH)
        answered_while_counting = not spy.gate.is_set()
        spy.gate.set()
        assert big.result().status_code == 200
    assert tiny.status_code == 200 and answered_while_counting
    assert not [length for length, on_loop in spy.calls if on_loop and length > INLINE_CHARS]
    deadline = time.monotonic() + 10
    while len(sink.records) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    [record] = [r for r in sink.records if r.input_tokens > 1000]
    assert (record.input_tokens, record.usage_estimated) == (expected, True)


LONG = "a" * 20_000
DEMO_BODIES = [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": LONG}]}),
    ("/v1/completions", {"prompt": LONG}),
    ("/v1/embeddings", {"input": LONG}),
    ("/v1/responses", {"input": LONG}),
    ("/v1/messages", {"messages": [{"role": "user", "content": LONG}], "max_tokens": 64}),
    ("/v1/messages/count_tokens", {"messages": [{"role": "user", "content": LONG}]}),
]


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("demo-data")
    text = DEFAULT_CONFIG_YAML.replace("data_dir: ./data", f"data_dir: {data}")
    with serve_in_thread(create_app(parse_config(text, "meterline.yaml", environ={}), sink=InMemorySink())) as url:
        yield url


@pytest.mark.parametrize(("route", "body"), DEMO_BODIES, ids=[route for route, _ in DEMO_BODIES])
def test_the_demo_counts_a_long_input_off_the_loop(
    demo_url: str, monkeypatch: pytest.MonkeyPatch, route: str, body: dict[str, Any]
) -> None:
    """The demo reports the gateway's count as its usage (and count_tokens answers with it): a
    long input is counted in a thread there too, and the count is the exact one."""
    encoding = SpyEncoding()
    monkeypatch.setattr(tokens, "_encoding", lambda: encoding)
    headers = {"Authorization": f"Bearer {DEMO_KEYS['support-bot']}"}
    answer = httpx.post(f"{demo_url}{route}", json={"model": "demo", **body}, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert (len(LONG), False) in encoding.calls
    assert not [length for length, on_loop in encoding.calls if on_loop and length > INLINE_CHARS]
