"""The gateway's count of a request's input tokens, per endpoint body, with `tokens.py`.

The routes count with these when a provider reports no usage, `/v1/messages/count_tokens`
answers with them where the provider has no count of its own, and the demo provider
(`providers/demo.py`) reports them as its usage, so the demo's bill is this count exactly.
"""

from __future__ import annotations

from typing import Any

from gateway.tokens import count_messages, count_text


def prompt_tokens(prompt: Any) -> int:
    """A prompt's (or an embeddings input's) tokens: a string, strings, a token array or token arrays."""
    prompts = prompt if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int) else [prompt]
    return sum(count_text(p) if isinstance(p, str) else len(p) for p in prompts)


def responses_input_tokens(body: dict[str, Any]) -> int:
    """A Responses request's input: instructions plus input items."""
    items = body.get("input")
    messages: list[dict[str, Any]] = [{"role": "user", "content": items}] if isinstance(items, str) else []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            messages.append({"role": "user", "content": item.get("content") or str(item.get("output") or "")})
    if isinstance(instructions := body.get("instructions"), str):
        messages.append({"role": "system", "content": instructions})
    return count_messages(messages)


def messages_input_tokens(body: dict[str, Any]) -> int:
    """An Anthropic Messages request's input: its messages plus the system prompt."""
    messages: list[dict[str, Any]] = list(body.get("messages") or [])
    if system := body.get("system"):
        messages.append({"role": "system", "content": system})
    return count_messages(messages)
