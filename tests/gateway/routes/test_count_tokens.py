"""POST /v1/messages/count_tokens with the anthropic SDK: Anthropic's own count on the direct
path (the mock Anthropic), the gateway's tokenizer elsewhere, flagged; authenticated like every
endpoint, never billed. (The demo group's count: tests/gateway/routes/test_demo.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam

from gateway.testing import ScriptedFailure
from gateway.tokens import count_messages
from tests.gateway.routes.conftest import AGENT_KEY, ANTHROPIC_KEY, LIMITED_KEY, Stack

MESSAGES: list[MessageParam] = [{"role": "user", "content": "Say hello to the team"}]
SYSTEM = "Be brief."
MOCK_COUNT = 3 + 5 + 3 + 2  # the mock's rule: 3 per message + words, the system prompt one more message
TOKENIZER_COUNT = 17  # cl100k_base: gateway/request_tokens.py


@pytest.fixture
def client(stack: Stack) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=stack.url, api_key=AGENT_KEY, max_retries=0) as client:
        yield client


def test_anthropic_group_is_counted_by_anthropic(stack: Stack, client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.count_tokens(model="claude", system=SYSTEM, messages=MESSAGES)
    assert raw.parse().input_tokens == MOCK_COUNT
    assert raw.headers["x-meterline-token-count"] == "provider"
    [sent] = stack.anthropic.requests
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.headers["x-api-key"] == ANTHROPIC_KEY
    assert sent.body["model"] == "claude-haiku-4-5"
    assert stack.sink.records == []  # not billed, not in the ledger


def test_other_groups_are_counted_by_the_gateways_tokenizer(stack: Stack, client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.count_tokens(model="chat", system=SYSTEM, messages=MESSAGES)
    assert raw.parse().input_tokens == TOKENIZER_COUNT
    assert raw.headers["x-meterline-token-count"] == "estimated"
    assert count_messages([*MESSAGES, {"role": "system", "content": SYSTEM}]) == TOKENIZER_COUNT
    assert stack.openai.requests == []
    assert stack.sink.records == []


def test_a_failed_provider_count_falls_back_to_the_tokenizer(stack: Stack, client: anthropic.Anthropic) -> None:
    stack.anthropic.fail_next(ScriptedFailure(529))
    raw = client.messages.with_raw_response.count_tokens(model="claude", system=SYSTEM, messages=MESSAGES)
    assert raw.parse().input_tokens == TOKENIZER_COUNT
    assert raw.headers["x-meterline-token-count"] == "estimated"


@pytest.mark.parametrize(
    ("key", "model", "status", "kind"),
    [
        (None, "claude", 401, "authentication_error"),
        ("not-a-key-0000000000", "claude", 401, "authentication_error"),
        (AGENT_KEY, "no-such-group", 404, "not_found_error"),
        (LIMITED_KEY, "chat", 403, "permission_error"),
    ],
)
def test_refusals_in_anthropics_error_shape(stack: Stack, key: str | None, model: str, status: int, kind: str) -> None:
    headers = {"x-api-key": key} if key else {}
    body = {"model": model, "messages": MESSAGES}
    answer = httpx.post(f"{stack.url}/v1/messages/count_tokens", json=body, headers=headers)
    assert answer.status_code == status
    assert answer.json()["type"] == "error"
    assert answer.json()["error"]["type"] == kind
    assert stack.anthropic.requests == []


def test_a_body_without_messages_is_refused(stack: Stack) -> None:
    answer = httpx.post(
        f"{stack.url}/v1/messages/count_tokens", json={"model": "claude"}, headers={"x-api-key": AGENT_KEY}
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "type": "invalid_request_error",
        "message": "messages: must be a non-empty array of messages",
    }


def test_a_text_block_without_string_text_is_refused(stack: Stack) -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}
    answer = httpx.post(f"{stack.url}/v1/messages/count_tokens", json=body, headers={"x-api-key": AGENT_KEY})
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"
