"""The embedded `demo` model group (meterline/defaults.py) with the official SDKs as clients:
every endpoint README lists, streamed and not, answers in the provider's wire format with usage
the gateway's tokenizer counts, and the client, the ledger row and the bill agree exactly.

The Agents SDK (`openai-agents`) cannot be installed beside the pinned `openai` (every release
since 0.2 conflicts), so its `Runner.run_streamed` path, a /v1/responses stream, is driven with
the openai SDK's `responses.stream`, the call the Agents SDK makes.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from langchain_openai import OpenAIEmbeddings
from pydantic import SecretStr

from gateway.app import create_app
from gateway.pricing import PriceBook
from gateway.providers.demo import DIMENSIONS, embedding_vector
from gateway.request_tokens import messages_input_tokens, prompt_tokens, responses_input_tokens
from gateway.telemetry.sink import InMemorySink
from gateway.token_usage import TokenUsage
from gateway.tokens import count_messages, count_text
from meterline.config import parse_config
from meterline.defaults import DEFAULT_CONFIG_YAML, DEMO_KEYS
from meterline.usage_record import UsageRecord
from tests.servers import serve_in_thread

KEY = DEMO_KEYS["support-bot"]
REPLY = (
    "Meterline is answering from the demo model. Every request you send is metered, priced and attributed to "
    "your agent."
)
REPLY_TOKENS = 24  # cl100k_base, the gateway's tokenizer
MODEL = "gpt-4o-mini"  # what answers and is priced (LiteLLM's table)
PRICES = PriceBook()
PROMPT = "Say hello to the team"
SYSTEM = "Be brief."


@pytest.fixture(scope="module")
def demo_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, InMemorySink]]:
    data = tmp_path_factory.mktemp("demo-data")
    text = DEFAULT_CONFIG_YAML.replace("data_dir: ./data", f"data_dir: {data}")
    sink = InMemorySink()
    with serve_in_thread(create_app(parse_config(text, "meterline.yaml", environ={}), sink=sink)) as url:
        yield url, sink


@pytest.fixture
def gateway(demo_gateway: tuple[str, InMemorySink]) -> tuple[str, InMemorySink]:
    url, sink = demo_gateway
    sink.records.clear()
    sink.spans.clear()
    return url, sink


def only_record(sink: InMemorySink) -> UsageRecord:
    [record] = sink.records
    return record


def assert_billed(record: UsageRecord, input_tokens: int, output_tokens: int) -> None:
    assert record.status == "ok"
    assert (record.model, record.provider) == (MODEL, "openai")
    assert (record.input_tokens, record.output_tokens) == (input_tokens, output_tokens)
    assert record.usage_estimated is False
    usage = TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens)
    assert record.cost_usd == PRICES.cost_usd(MODEL, "openai", usage)
    assert record.cost_usd is not None and record.cost_usd > 0


@pytest.fixture
def claude(gateway: tuple[str, InMemorySink]) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway[0], api_key=KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def gpt(gateway: tuple[str, InMemorySink]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway[0]}/v1", api_key=KEY, max_retries=0) as client:
        yield client


def test_the_reply_is_counted_by_the_gateways_tokenizer() -> None:
    assert count_text(REPLY) == REPLY_TOKENS
    assert messages_input_tokens({"messages": [{"role": "user", "content": PROMPT}], "system": SYSTEM}) == 17


def test_messages_usage_is_the_tokenizers_count_and_the_ledgers(
    claude: anthropic.Anthropic, gateway: tuple[str, InMemorySink]
) -> None:
    message = claude.messages.create(
        model="demo", max_tokens=100, system=SYSTEM, messages=[{"role": "user", "content": PROMPT}]
    )
    assert message.model == MODEL
    assert [block.text for block in message.content if block.type == "text"] == [REPLY]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (17, REPLY_TOKENS)
    assert message.stop_reason == "end_turn"
    record = only_record(gateway[1])
    assert_billed(record, 17, REPLY_TOKENS)
    assert record.operation == "chat"


def test_hello_on_messages_bills_what_hello_on_chat_bills(
    claude: anthropic.Anthropic, gpt: openai.OpenAI, gateway: tuple[str, InMemorySink]
) -> None:
    message = claude.messages.create(model="demo", max_tokens=100, messages=[{"role": "user", "content": "Hello"}])
    completion = gpt.chat.completions.create(model="demo", messages=[{"role": "user", "content": "Hello"}])
    assert completion.usage is not None
    assert message.usage.input_tokens == completion.usage.prompt_tokens == 7
    first, second = gateway[1].records
    assert first.cost_usd == second.cost_usd


def test_messages_stream_helper(claude: anthropic.Anthropic, gateway: tuple[str, InMemorySink]) -> None:
    with claude.messages.stream(
        model="demo", max_tokens=100, system=SYSTEM, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == REPLY
    assert final.model == MODEL
    assert (final.usage.input_tokens, final.usage.output_tokens) == (17, REPLY_TOKENS)
    assert_billed(only_record(gateway[1]), 17, REPLY_TOKENS)


def test_messages_stream_true_events(claude: anthropic.Anthropic, gateway: tuple[str, InMemorySink]) -> None:
    events = list(
        claude.messages.create(
            model="demo", max_tokens=100, messages=[{"role": "user", "content": PROMPT}], stream=True
        )
    )
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert "error" not in kinds
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == REPLY
    delta = events[-2]
    assert delta.type == "message_delta"
    assert delta.usage.output_tokens == REPLY_TOKENS
    record = only_record(gateway[1])
    assert record.stream is True
    assert_billed(record, 11, REPLY_TOKENS)


def test_responses_stream_as_the_agents_sdk_runs_it(gpt: openai.OpenAI, gateway: tuple[str, InMemorySink]) -> None:
    with gpt.responses.stream(model="demo", input=PROMPT, instructions=SYSTEM) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == REPLY == final.output_text
    assert final.model == MODEL
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens) == (
        17,
        REPLY_TOKENS,
        17 + REPLY_TOKENS,
    )
    assert responses_input_tokens({"input": PROMPT, "instructions": SYSTEM}) == 17
    record = only_record(gateway[1])
    assert record.stream is True
    assert_billed(record, 17, REPLY_TOKENS)


def test_responses_create(gpt: openai.OpenAI, gateway: tuple[str, InMemorySink]) -> None:
    response = gpt.responses.create(model="demo", input=[{"role": "user", "content": PROMPT}])
    assert response.output_text == REPLY
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, REPLY_TOKENS)
    assert_billed(only_record(gateway[1]), 11, REPLY_TOKENS)


@pytest.mark.parametrize("stream", [False, True])
def test_chat_completions(gpt: openai.OpenAI, gateway: tuple[str, InMemorySink], stream: bool) -> None:
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]
    assert count_messages(messages) == 11
    if stream:
        chunks = list(
            gpt.chat.completions.create(
                model="demo", messages=messages, stream=True, stream_options={"include_usage": True}
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = chunks[-1].usage
        assert {c.model for c in chunks} == {MODEL}
    else:
        completion = gpt.chat.completions.create(model="demo", messages=messages)
        text, usage = completion.choices[0].message.content or "", completion.usage
        assert completion.model == MODEL
    assert text == REPLY
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, REPLY_TOKENS, 11 + REPLY_TOKENS)
    assert_billed(only_record(gateway[1]), 11, REPLY_TOKENS)


@pytest.mark.parametrize("stream", [False, True])
def test_completions(gpt: openai.OpenAI, gateway: tuple[str, InMemorySink], stream: bool) -> None:
    prompt = "Meterline meters every token"
    assert prompt_tokens(prompt) == 5
    if stream:
        chunks = list(
            gpt.completions.create(model="demo", prompt=prompt, stream=True, stream_options={"include_usage": True})
        )
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        usage = chunks[-1].usage
    else:
        completion = gpt.completions.create(model="demo", prompt=prompt)
        text, usage = completion.choices[0].text, completion.usage
    assert text == REPLY
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (5, REPLY_TOKENS, 5 + REPLY_TOKENS)
    assert_billed(only_record(gateway[1]), 5, REPLY_TOKENS)


def test_embeddings_base64_the_sdks_default(gpt: openai.OpenAI, gateway: tuple[str, InMemorySink]) -> None:
    # The openai SDK asks for base64 when the caller names no format, and decodes it to floats.
    result = gpt.embeddings.create(model="demo", input=["one two", "three"])
    assert [len(item.embedding) for item in result.data] == [DIMENSIONS, DIMENSIONS] == [256, 256]
    assert result.data[0].embedding == embedding_vector("one two", DIMENSIONS)
    assert result.data[1].embedding == embedding_vector("three", DIMENSIONS)
    assert result.model == MODEL
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (3, 3)
    record = only_record(gateway[1])
    assert record.operation == "embeddings"
    assert_billed(record, 3, 0)


def test_embeddings_base64_on_the_wire(gateway: tuple[str, InMemorySink]) -> None:
    body = {"model": "demo", "input": "one two", "encoding_format": "base64", "dimensions": 8}
    answer = httpx.post(f"{gateway[0]}/v1/embeddings", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200
    packed = base64.b64decode(answer.json()["data"][0]["embedding"])
    assert list(struct.unpack("<8f", packed)) == embedding_vector("one two", 8)
    assert answer.json()["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


def test_embeddings_float(gpt: openai.OpenAI, gateway: tuple[str, InMemorySink]) -> None:
    result = gpt.embeddings.create(model="demo", input="one two", encoding_format="float")
    assert result.data[0].embedding == embedding_vector("one two", DIMENSIONS)
    assert all(isinstance(value, float) for value in result.data[0].embedding)
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (2, 2)
    assert_billed(only_record(gateway[1]), 2, 0)


def test_count_tokens_is_the_demos_own_count_and_not_billed(
    claude: anthropic.Anthropic, gateway: tuple[str, InMemorySink]
) -> None:
    raw = claude.messages.with_raw_response.count_tokens(
        model="demo", system=SYSTEM, messages=[{"role": "user", "content": PROMPT}]
    )
    assert raw.parse().input_tokens == 17
    assert raw.headers["x-meterline-token-count"] == "provider"
    assert gateway[1].records == []
    # ... and is what the demo then bills.
    claude.messages.create(model="demo", max_tokens=10, system=SYSTEM, messages=[{"role": "user", "content": PROMPT}])
    assert only_record(gateway[1]).input_tokens == 17


def test_langchain_openai_embeddings(gateway: tuple[str, InMemorySink]) -> None:
    # LangChain's defaults (the SDK's base64), without its client-side chunking by token ids.
    embedder = OpenAIEmbeddings(
        model="demo",
        base_url=f"{gateway[0]}/v1",
        api_key=SecretStr(KEY),
        max_retries=0,
        check_embedding_ctx_length=False,
    )
    assert embedder.embed_query("one two") == embedding_vector("one two", DIMENSIONS)
    assert embedder.embed_documents(["one two", "three"]) == [
        embedding_vector("one two", DIMENSIONS),
        embedding_vector("three", DIMENSIONS),
    ]
    first, second = gateway[1].records
    assert_billed(first, 2, 0)
    assert_billed(second, 3, 0)


CUT_10 = "Meterline is answering from the demo model. Every"  # the reply's first 10 tokens, whole words


def test_messages_max_tokens_cuts_the_reply(claude: anthropic.Anthropic, gateway: tuple[str, InMemorySink]) -> None:
    with claude.messages.stream(model="demo", max_tokens=10, messages=[{"role": "user", "content": PROMPT}]) as stream:
        final = stream.get_final_message()
    assert [block.text for block in final.content if block.type == "text"] == [CUT_10]
    assert (final.stop_reason, final.usage.output_tokens) == ("max_tokens", 10)
    assert_billed(only_record(gateway[1]), 11, 10)


def test_chat_max_tokens_cuts_the_reply(gpt: openai.OpenAI, gateway: tuple[str, InMemorySink]) -> None:
    completion = gpt.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": PROMPT}], max_completion_tokens=10
    )
    assert completion.choices[0].message.content == CUT_10
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 10
    assert_billed(only_record(gateway[1]), 11, 10)


def test_responses_max_output_tokens_is_incomplete(gpt: openai.OpenAI, gateway: tuple[str, InMemorySink]) -> None:
    # OpenAI ends a cut stream with `response.incomplete` (the SDK's stream helper wants
    # `response.completed`, so the events are read as they come).
    events = list(gpt.responses.create(model="demo", input=PROMPT, max_output_tokens=10, stream=True))
    last = events[-1]
    assert last.type == "response.incomplete"
    final = last.response
    assert (final.status, final.output_text) == ("incomplete", CUT_10)
    assert final.incomplete_details is not None and final.incomplete_details.reason == "max_output_tokens"
    assert final.usage is not None and final.usage.output_tokens == 10
    assert_billed(only_record(gateway[1]), 11, 10)
