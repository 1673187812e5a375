"""The most output a request can be billed for, read from its body by the endpoint's parser.

A provider bills every generation it makes: chat's `n` choices, the legacy completions'
`best_of` candidates for each prompt of a batch, each at most the request's output cap
(`max_completion_tokens` / `max_tokens`, the Responses API's `max_output_tokens`, Anthropic's
required `max_tokens`). The quota reservation (gateway/quotas/plan.py) multiplies them out, so
a cap is never passed by a request that the provider answers within what it was asked.
Embeddings bill input only. Values of the wrong type answer 400 here: a count the gateway
cannot read is a count it cannot reserve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class OutputBound:
    completions: int = 1
    """Generations the provider makes and bills (n, best_of x prompts)."""
    max_tokens: int | None = None
    """Each generation's output cap; None: the model's own output limit."""


ONE_OUTPUT = OutputBound()
"""One generation up to the model's own output limit: what a request that says nothing may bill."""
NO_OUTPUT = OutputBound(completions=0, max_tokens=0)
"""Embeddings: input tokens only."""


def whole_number(body: dict[str, Any], name: str, minimum: int) -> int | None:
    """An integer field (an integral float such as 50.0 too; JSON does not tell them apart for
    every client) at least `minimum`; None when absent or null; 400 otherwise."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidRequest(f"'{name}' must be an integer of at least {minimum}", param=name)
    return value


def largest_cap(body: dict[str, Any], *names: str) -> int | None:
    """The largest of the output caps the body sets (a provider may honour any one of them)."""
    caps = [cap for name in names if (cap := whole_number(body, name, 0)) is not None]
    return max(caps) if caps else None


def chat_bound(body: dict[str, Any]) -> OutputBound:
    """/v1/chat/completions: `n` choices of `max_completion_tokens` (or the older `max_tokens`)."""
    return OutputBound(whole_number(body, "n", 1) or 1, largest_cap(body, "max_completion_tokens", "max_tokens"))


def completion_bound(body: dict[str, Any]) -> OutputBound:
    """/v1/completions: for each prompt of the batch, `best_of` candidates generated (at least
    `n`, which are returned), each up to `max_tokens`."""
    n = whole_number(body, "n", 1) or 1
    best_of = whole_number(body, "best_of", 1) or 1
    return OutputBound(prompt_count(body.get("prompt")) * max(n, best_of), largest_cap(body, "max_tokens"))


def prompt_count(prompt: Any) -> int:
    """Prompts in a completions batch: a string or one token array is one; a list of strings or
    of token arrays is one per item."""
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        return len(prompt)
    return 1
