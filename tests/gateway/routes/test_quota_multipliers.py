"""Caps that count every token (issue 12): the reservation's worst case includes every
multiplier the provider bills (`n`, `best_of`, a batch of prompts, the largest output cap, the
Responses API's `max_output_tokens`, Anthropic's `max_tokens`; embeddings bill no output), and a
provider that bills more than it was asked passes a cap by at most one request's excess, after
which the agent gets 429 at once (README "Agents, keys and limits", docs/architecture.md).

The mocks bill `words(reply)` output tokens per generation whatever `max_tokens` says, so a
reply of exactly 50 words is a provider that uses every token it was allowed at max_tokens 50,
and a longer one is a provider that ignores max_tokens."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.telemetry.sink import InMemorySink
from gateway.testing import MockBehaviour, create_mock_anthropic, create_mock_openai
from meterline.config import parse_config
from tests.servers import serve_in_thread

CAP = 2_000
CONCURRENT = 30
FIFTY_WORDS = " ".join(["word"] * 50)
MESSAGES = [{"role": "user", "content": "one two three"}]  # the mocks' rule: 3 + 3 = 6 prompt tokens
PROMPT_TOKENS = 6

# (case, route, body): each is refused outright, because its worst case passes 2,000 tokens.
OVER_THE_CAP: list[tuple[str, str, dict[str, Any]]] = [
    ("chat-n", "/v1/chat/completions", {"model": "chat", "messages": MESSAGES, "n": 50, "max_tokens": 50}),
    (
        "chat-n-completion-tokens",
        "/v1/chat/completions",
        {"model": "chat", "messages": MESSAGES, "n": 50, "max_completion_tokens": 50},
    ),
    (
        "chat-largest-cap",
        "/v1/chat/completions",
        {"model": "chat", "messages": MESSAGES, "max_completion_tokens": 10, "max_tokens": 2_500},
    ),
    ("best-of", "/v1/completions", {"model": "instruct", "prompt": "one two three", "best_of": 50, "max_tokens": 50}),
    ("prompt-batch", "/v1/completions", {"model": "instruct", "prompt": ["one two"] * 50, "max_tokens": 50}),
    ("responses", "/v1/responses", {"model": "chat", "input": "one two three", "max_output_tokens": 2_500}),
    ("messages", "/v1/messages", {"model": "claude", "messages": MESSAGES, "max_tokens": 2_500}),
]
# (case, route, body, generations of at most 50 tokens, tokens the mock bills): worst cases that fit.
FITS: list[tuple[str, str, dict[str, Any], int, int]] = [
    ("chat-n-fits", "/v1/chat/completions", {"model": "chat", "messages": MESSAGES, "n": 5, "max_tokens": 50}, 5, 256),
    (
        "best-of-fits",
        "/v1/completions",
        {"model": "instruct", "prompt": "one two three", "best_of": 5, "max_tokens": 50},
        5,
        3 + 250,
    ),
    (
        "prompt-batch-fits",
        "/v1/completions",
        {"model": "instruct", "prompt": ["one two three"] * 5, "max_tokens": 50},
        5,
        15 + 250,
    ),
    ("responses-fits", "/v1/responses", {"model": "chat", "input": "one two three", "max_output_tokens": 50}, 1, 56),
    ("messages-fits", "/v1/messages", {"model": "claude", "messages": MESSAGES, "max_tokens": 50}, 1, 56),
]
CASES = [c[0] for c in OVER_THE_CAP + FITS] + ["embeddings-batch", "overshoot-parallel"]

CONFIG = """
model_list:
  - model_name: chat
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{openai}/v1", api_key: sk-mock}}
  - model_name: instruct
    litellm_params: {{model: openai/gpt-3.5-turbo-instruct, api_base: "{openai}/v1", api_key: sk-mock}}
  - model_name: embed
    litellm_params: {{model: openai/text-embedding-3-small, api_base: "{openai}/v1", api_key: sk-mock}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-haiku-4-5, api_base: "{anthropic}", api_key: sk-ant-mock}}
agents:
{agents}
"""


def key_of(case: str) -> str:
    return f"agent-key-multipliers-{case}"


@dataclass
class Gateway:
    url: str
    sink: InMemorySink
    openai: MockBehaviour
    anthropic: MockBehaviour

    def billed(self, case: str) -> list[int]:
        """Tokens of each request the ledger bills to the case's agent (answered ones)."""
        return [r.input_tokens + r.output_tokens for r in self.sink.records if r.agent_id == case and r.status == "ok"]


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    openai_mock = MockBehaviour(accepted_keys={"sk-mock"}, reply=FIFTY_WORDS)
    anthropic_mock = MockBehaviour(accepted_keys={"sk-ant-mock"}, reply=FIFTY_WORDS)
    agents = []
    for case in CASES + [c[0] for c in OVERSHOOT]:
        parallel = ", max_parallel: 4" if case == "overshoot-parallel" else ""
        agents.append(f"  - {{id: {case}, team: t-{case}, key: {key_of(case)}, "
                      f"limits: {{tokens_per_day: {CAP}{parallel}}}}}")  # fmt: skip
    with (
        serve_in_thread(create_mock_openai(openai_mock)) as openai_url,
        serve_in_thread(create_mock_anthropic(anthropic_mock)) as anthropic_url,
    ):
        text = CONFIG.format(openai=openai_url, anthropic=anthropic_url, agents="\n".join(agents))
        sink = InMemorySink()
        with serve_in_thread(create_app(parse_config(text, "multipliers.yaml", environ={}), sink=sink)) as url:
            yield Gateway(url, sink, openai_mock, anthropic_mock)


def post(client: httpx.Client, case: str, route: str, body: dict[str, Any]) -> httpx.Response:
    return client.post(route, content=json.dumps(body), headers=headers(case))


def headers(case: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key_of(case)}", "content-type": "application/json"}


def at_once(url: str, case: str, route: str, body: dict[str, Any], count: int = CONCURRENT) -> list[httpx.Response]:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            content = json.dumps(body)
            return await asyncio.gather(
                *(client.post(route, content=content, headers=headers(case)) for _ in range(count))
            )

    return asyncio.run(burst())


@pytest.mark.parametrize(("case", "route", "body"), OVER_THE_CAP, ids=[case for case, _, _ in OVER_THE_CAP])
def test_a_worst_case_over_the_cap_is_refused_every_time(
    gateway: Gateway, case: str, route: str, body: dict[str, Any]
) -> None:
    responses = at_once(gateway.url, case, route, body)
    assert [r.status_code for r in responses] == [429] * CONCURRENT
    assert gateway.billed(case) == []
    codes = {(r.json().get("error") or {}).get("type") if route == "/v1/messages" else r.json()["error"]["code"]
             for r in responses}  # fmt: skip
    assert codes == ({"rate_limit_error"} if route == "/v1/messages" else {"request_exceeds_limit"})


@pytest.mark.parametrize(("case", "route", "body", "generations", "billed_each"), FITS, ids=[c[0] for c in FITS])
def test_worst_cases_that_fit_are_admitted_billed_exactly_and_never_pass_the_cap(
    gateway: Gateway, case: str, route: str, body: dict[str, Any], generations: int, billed_each: int
) -> None:
    """A provider that uses every token it was allowed (50 a generation): each answer is billed
    exactly, the total stays under the cap, and as many worst cases as fit side by side pass."""
    reserved = len(json.dumps(body)) // 2 + 16 + generations * 50  # the body-size input bound + outputs
    responses = at_once(gateway.url, case, route, body)
    admitted = sum(r.status_code == 200 for r in responses)
    assert admitted + sum(r.status_code == 429 for r in responses) == CONCURRENT
    assert gateway.billed(case) == [billed_each] * admitted  # every generation billed
    assert admitted * billed_each <= CAP
    assert admitted >= CAP // reserved >= 1


def test_an_embeddings_batch_reserves_its_inputs_and_no_output(gateway: Gateway) -> None:
    body = {"model": "embed", "input": [[7] * 10 for _ in range(20)]}  # 200 input tokens, no output
    reserved = len(json.dumps(body)) // 2 + 16
    assert reserved >= 200
    responses = at_once(gateway.url, "embeddings-batch", "/v1/embeddings", body)
    admitted = sum(r.status_code == 200 for r in responses)
    assert admitted + sum(r.status_code == 429 for r in responses) == CONCURRENT
    assert gateway.billed("embeddings-batch") == [200] * admitted
    assert CAP // reserved <= admitted <= CAP // 200


# (case, route, body, tokens the provider bills while ignoring max_tokens 10, exact total billed)
OVERSHOOT: list[tuple[str, str, dict[str, Any], int, int]] = [
    ("overshoot", "/v1/chat/completions", {"model": "chat", "messages": MESSAGES, "max_tokens": 10}, 106, 19 * 106),
    (
        "overshoot-completions",
        "/v1/completions",
        {"model": "instruct", "prompt": "one two three four five six seven", "max_tokens": 10},
        107,
        19 * 107,
    ),
    ("overshoot-messages", "/v1/messages", {"model": "claude", "messages": MESSAGES, "max_tokens": 10}, 106, 19 * 106),
]


@pytest.mark.parametrize(("case", "route", "body", "billed_each", "total"), OVERSHOOT, ids=[c[0] for c in OVERSHOOT])
def test_a_provider_that_ignores_max_tokens_passes_the_cap_by_one_requests_excess_then_429(
    gateway: Gateway, case: str, route: str, body: dict[str, Any], billed_each: int, total: int
) -> None:
    """Requests one at a time, max_tokens 10, a provider answering 100 tokens: the excess settles,
    the cap is passed by less than one request's excess (billed - reserved), and the next request
    is refused at once."""
    gateway.openai.reply = gateway.anthropic.reply = " ".join(["many"] * 100)
    try:
        reserved = len(json.dumps(body)) // 2 + 16 + 10
        # Admitted while what is already counted plus the reservation fits: billed_each k + reserved <= 2000.
        expected = (CAP - reserved) // billed_each + 1
        statuses: list[int] = []
        with httpx.Client(base_url=gateway.url, timeout=60) as client:
            while not statuses or statuses[-1] == 200:
                statuses.append(post(client, case, route, body).status_code)
                assert len(statuses) <= expected + 1
            refused = post(client, case, route, {**body, "max_tokens": 1})
    finally:
        gateway.openai.reply = gateway.anthropic.reply = FIFTY_WORDS
    assert statuses == [200] * expected + [429]
    assert refused.status_code == 429
    billed = sum(gateway.billed(case))
    assert billed == expected * billed_each == total
    assert 0 < billed - CAP <= billed_each - reserved  # the one-request bound, and it was reached


def test_concurrent_overshoot_is_bounded_by_max_parallel_requests_excess(gateway: Gateway) -> None:
    """With `max_parallel: 4`, at most 4 requests are in flight when the counter passes the cap,
    so it is passed by at most 4 requests' excess; then every request gets 429."""
    gateway.openai.reply = " ".join(["many"] * 100)
    try:
        body = {"model": "chat", "messages": MESSAGES, "max_tokens": 10}
        reserved = len(json.dumps(body)) // 2 + 16 + 10
        billed_each = PROMPT_TOKENS + 100
        rounds: list[list[httpx.Response]] = []
        while not rounds or any(r.status_code == 200 for r in rounds[-1]):
            rounds.append(at_once(gateway.url, "overshoot-parallel", "/v1/chat/completions", body, count=8))
            assert len(rounds) <= 20
    finally:
        gateway.openai.reply = FIFTY_WORDS
    billed = gateway.billed("overshoot-parallel")
    assert billed == [billed_each] * len(billed)
    assert CAP - reserved < sum(billed) <= CAP + 4 * (billed_each - reserved)
    last = rounds[-1]
    assert {r.json()["error"]["code"] for r in last} == {"tokens_per_day_exceeded"}
