"""Token counts from a provider's usage block, in OpenTelemetry GenAI meaning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.json_codec import dumps_sorted


@dataclass(frozen=True, slots=True)
class TokenUsage:
    input_tokens: int = 0
    """Includes cached reads and cache writes."""
    output_tokens: int = 0
    """Includes reasoning tokens."""
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_output_tokens: int = 0
    raw: str | None = None
    """The usage block as received, JSON, for audits and re-pricing."""


def openai_usage_block(usage: TokenUsage) -> dict[str, int]:
    """OpenAI's usage block for counts the gateway made (no cache or reasoning subsets to report)."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def embeddings_usage_block(usage: TokenUsage) -> dict[str, int]:
    """OpenAI's embeddings usage block for counts the gateway made."""
    return {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens}


def responses_usage_block(usage: TokenUsage) -> dict[str, int]:
    """The Responses API's usage block for counts the gateway made."""
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def anthropic_usage_block(usage: TokenUsage) -> dict[str, int]:
    """Anthropic's usage block for counts the gateway made (its input excludes cache reads and writes)."""
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def from_usage_block(block: Any) -> TokenUsage | None:
    """TokenUsage from an OpenAI-shaped usage block (dict or pydantic object); None when absent."""
    if block is None:
        return None
    data: dict[str, Any] = block.model_dump(exclude_none=True) if hasattr(block, "model_dump") else dict(block)
    if not data.get("prompt_tokens") and not data.get("completion_tokens"):
        # A block of zeros is what some SDK layers (LiteLLM among them) fill in when the provider
        # sent nothing; the gateway counts instead of billing a used request at $0.
        return None
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    return TokenUsage(
        input_tokens=_int(data.get("prompt_tokens")),
        output_tokens=_int(data.get("completion_tokens")),
        cache_read_input_tokens=_int(prompt_details.get("cached_tokens") or data.get("cache_read_input_tokens")),
        cache_creation_input_tokens=_int(data.get("cache_creation_input_tokens")),
        reasoning_output_tokens=_int(completion_details.get("reasoning_tokens")),
        raw=dumps_sorted({k: v for k, v in data.items() if k != "cost"}),
    )


def from_responses_usage(block: Any) -> TokenUsage | None:
    """TokenUsage from a Responses API usage block (`input_tokens`, `output_tokens` and their details)."""
    if not isinstance(block, dict):
        return None
    input_details = block.get("input_tokens_details") or {}
    output_details = block.get("output_tokens_details") or {}
    return TokenUsage(
        input_tokens=_int(block.get("input_tokens")),
        output_tokens=_int(block.get("output_tokens")),
        cache_read_input_tokens=_int(input_details.get("cached_tokens")),
        reasoning_output_tokens=_int(output_details.get("reasoning_tokens")),
        raw=dumps_sorted({k: v for k, v in block.items() if k != "cost"}),
    )


def from_anthropic_usage(block: Any) -> TokenUsage | None:
    """TokenUsage from an Anthropic usage block, whose `input_tokens` excludes cache reads and
    writes; here input counts them (OpenTelemetry GenAI meaning)."""
    if not isinstance(block, dict):
        return None
    if not any(_int(block.get(k)) for k in ("input_tokens", "output_tokens", "cache_read_input_tokens")):
        # All zeros: what LiteLLM's Anthropic adapter fills in when the provider behind it sent
        # no usage (an Anthropic message always has input); the gateway counts instead of $0.
        return None
    cache_read = _int(block.get("cache_read_input_tokens"))
    cache_creation = _int(block.get("cache_creation_input_tokens"))
    return TokenUsage(
        input_tokens=_int(block.get("input_tokens")) + cache_read + cache_creation,
        output_tokens=_int(block.get("output_tokens")),
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_creation,
        raw=dumps_sorted(block),
    )
