"""The gateway's HTTP surface with the official openai SDK as the client."""

from __future__ import annotations

import json
import os

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from gateway.telemetry.sink import InMemorySink
from gateway.tokens import count_messages
from meterline import semconv
from tests.gateway.conftest import RESEARCH_KEY, SUPPORT_KEY, sdk

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm

REPLY_TOKENS = 24  # the demo reply (meterline/defaults.py) by the gateway's tokenizer
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "How much did the support bot spend yesterday?"}
]


def expected_cost(prompt_tokens: int, completion_tokens: int) -> float:
    prompt, completion = litellm.cost_per_token(
        model="gpt-4o-mini", prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
    )
    return float(prompt) + float(completion)


def test_non_stream_completion_is_metered_and_priced(openai_client: openai.OpenAI, sink: InMemorySink) -> None:
    response = openai_client.chat.completions.create(model="demo", messages=MESSAGES)
    assert response.usage is not None
    expected_prompt = count_messages(MESSAGES)  # the demo provider reports the gateway's tokenizer count
    assert response.usage.prompt_tokens == expected_prompt == 15
    assert response.usage.completion_tokens == REPLY_TOKENS
    [record] = sink.records
    assert (record.agent_id, record.team, record.project) == ("support-bot", "support", "helpdesk")
    assert record.tags == {"cost_center": "cc-102"}
    assert (record.model_requested, record.model, record.provider) == ("demo", "gpt-4o-mini", "openai")
    assert (record.input_tokens, record.output_tokens) == (expected_prompt, REPLY_TOKENS)
    assert record.usage_estimated is False
    assert record.cost_usd == pytest.approx(expected_cost(expected_prompt, REPLY_TOKENS), rel=1e-12)
    assert record.cost_usd > 0
    assert record.price_version is not None and record.price_version.startswith("litellm-1.106.2+")
    assert (record.status, record.http_status, record.stream, record.attempts) == ("ok", 200, False, 1)
    assert json.loads(record.usage_raw or "{}")["prompt_tokens"] == expected_prompt
    assert record.ttft_ms is None
    assert record.date == record.ts_start.date()


def test_stream_usage_is_recorded_but_not_sent_unless_asked(openai_client: openai.OpenAI, sink: InMemorySink) -> None:
    chunks = list(openai_client.chat.completions.create(model="demo", messages=MESSAGES, stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Meterline is answering")
    [record] = sink.records
    assert record.stream is True
    assert record.output_tokens == REPLY_TOKENS
    assert record.input_tokens == count_messages(MESSAGES)
    assert record.ttft_ms is not None and record.ttft_ms <= record.latency_ms
    assert record.usage_estimated is False


def test_stream_with_include_usage_ends_with_openai_usage_chunk(
    openai_client: openai.OpenAI, sink: InMemorySink
) -> None:
    chunks = list(
        openai_client.chat.completions.create(
            model="demo",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    [record] = sink.records
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (record.input_tokens, record.output_tokens)


def test_each_agent_is_attributed_by_its_own_key(gateway_url: str, sink: InMemorySink) -> None:
    sdk(gateway_url, RESEARCH_KEY).chat.completions.create(model="demo", messages=MESSAGES)
    [record] = sink.records
    assert (record.agent_id, record.team, record.tags) == ("research-agent", "research", {"cost_center": "cc-205"})


def test_span_uses_genai_names_and_continues_the_agents_trace(client: httpx.Client, sink: InMemorySink) -> None:
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    response = client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {SUPPORT_KEY}", "traceparent": f"00-{trace_id}-{parent}-01"},
        json={"model": "demo", "messages": MESSAGES},
    )
    assert response.status_code == 200
    [record] = sink.records
    [draft] = sink.spans
    assert record.trace_id == trace_id
    assert draft.parent_span_id == parent
    assert draft.record is record
    from gateway.telemetry.spans import server_span

    span = server_span(draft.record, parent_span_id=draft.parent_span_id, route=draft.route)
    attrs = {kv.key: kv.value for kv in span.attributes}
    assert span.name == "chat demo"
    assert attrs[semconv.GEN_AI_OPERATION_NAME].string_value == "chat"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL].string_value == "demo"
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL].string_value == "gpt-4o-mini"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS].int_value == record.input_tokens
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS].int_value == REPLY_TOKENS
    assert attrs[semconv.METERLINE_AGENT_ID].string_value == "support-bot"
    assert attrs[semconv.METERLINE_COST_USD].double_value == record.cost_usd
    assert span.parent_span_id.hex() == parent
    assert response.headers["x-request-id"] == record.request_id


def test_models_lists_the_groups(openai_client: openai.OpenAI) -> None:
    assert [m.id for m in openai_client.models.list()] == ["demo"]


def test_health(client: httpx.Client) -> None:
    assert client.get("/health/liveliness").json() == {"status": "alive"}
    ready = client.get("/health/readiness")
    assert ready.status_code == 200
    assert ready.json()["model_groups"] == ["demo"]


def test_agent_keys_never_reach_records_or_spans(openai_client: openai.OpenAI, sink: InMemorySink) -> None:
    openai_client.chat.completions.create(model="demo", messages=MESSAGES)
    dumped = repr(sink.records) + repr(sink.spans)
    assert SUPPORT_KEY not in dumped
    assert RESEARCH_KEY not in dumped
