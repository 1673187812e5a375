"""Meterline's price arithmetic equals LiteLLM's `cost_per_token` on LiteLLM's own table."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.pricing import PriceBook
from gateway.token_usage import TokenUsage

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm

BOOK = PriceBook()
MODELS = [
    ("gpt-4o-mini", "openai"),
    ("gpt-4o", "openai"),
    ("gpt-4.1", "openai"),
    ("o3-mini", "openai"),
    ("deepseek-chat", "deepseek"),
    ("claude-haiku-4-5", "anthropic"),
    ("claude-sonnet-4-5", "anthropic"),
    ("claude-opus-4-6", "anthropic"),
    ("gemini-2.5-pro", "gemini"),
]


def litellm_cost(model: str, provider: str, usage: TokenUsage) -> float:
    prompt, completion = litellm.cost_per_token(
        model=model,
        custom_llm_provider=provider,
        usage_object=litellm.Usage(
            prompt_tokens=usage.input_tokens,
            completion_tokens=usage.output_tokens,
            total_tokens=usage.input_tokens + usage.output_tokens,
            prompt_tokens_details={"cached_tokens": usage.cache_read_input_tokens},
            completion_tokens_details={"reasoning_tokens": usage.reasoning_output_tokens},
            cache_read_input_tokens=usage.cache_read_input_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
        ),
    )
    return float(prompt) + float(completion)


@pytest.mark.parametrize(("model", "provider"), MODELS)
def test_models_are_priced(model: str, provider: str) -> None:
    assert BOOK.is_priced(model, provider)


@settings(max_examples=60, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    input_tokens=st.integers(0, 400_000),
    cached_share=st.floats(0, 1),
    written_share=st.floats(0, 1),
    output_tokens=st.integers(0, 40_000),
    reasoning_share=st.floats(0, 1),
)
def test_cost_matches_litellm(
    model: tuple[str, str],
    input_tokens: int,
    cached_share: float,
    written_share: float,
    output_tokens: int,
    reasoning_share: float,
) -> None:
    name, provider = model
    cache_read = int(input_tokens * cached_share)
    # Only Anthropic-style providers report cache writes.
    cache_write = int((input_tokens - cache_read) * written_share) if provider == "anthropic" else 0
    usage = TokenUsage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_write,
        reasoning_output_tokens=int(output_tokens * reasoning_share),
    )
    assert BOOK.cost_usd(name, provider, usage) == pytest.approx(
        litellm_cost(name, provider, usage), rel=1e-9, abs=1e-15
    )


def test_exact_gpt_4o_mini_arithmetic() -> None:
    usage = TokenUsage(input_tokens=1000, output_tokens=200, cache_read_input_tokens=400)
    # 600 plain input at 0.15/M + 400 cached at 0.075/M + 200 output at 0.60/M
    assert BOOK.cost_usd("gpt-4o-mini", "openai", usage) == pytest.approx(600 * 0.15e-6 + 400 * 0.075e-6 + 200 * 0.6e-6)


def test_unknown_model_costs_nothing_and_is_not_priced() -> None:
    assert BOOK.cost_usd("no-such-model", "openai", TokenUsage(input_tokens=10)) == 0.0
    assert not BOOK.is_priced("no-such-model", "openai")


def test_version_names_the_table() -> None:
    assert BOOK.version.startswith("litellm-1.106.2+")
    assert len(BOOK.version.split("+")[1]) == 12
