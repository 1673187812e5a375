"""Token counting for when a provider reports no usage (and for admission estimates).

Uses tiktoken's cl100k_base from the copy bundled inside LiteLLM, so counting never reaches
the internet and needs no `import litellm`. Loaded on first use.

Counting is exact and costs up to ~1.3 µs a character (the tokenizer's worst case, one
character repeated: a 9 MB prompt took 12 s), so code on the event loop counts through
`off_loop`: text up to `INLINE_CHARS` inline, longer text in a worker thread (tiktoken
releases the GIL while it encodes), so other requests go on meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

INLINE_CHARS = 4096
"""Text up to this many characters is counted on the event loop: at most ~5 ms even in the
tokenizer's worst case. Longer text goes to a thread (a hop costs ~0.1 ms)."""

# Per-message framing tokens, as OpenAI's cookbook counts them for chat models.
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_REPLY = 3


@functools.cache
def _encoding() -> Any:
    spec = importlib.util.find_spec("litellm")
    if spec is not None and spec.origin is not None and "TIKTOKEN_CACHE_DIR" not in os.environ:
        os.environ["TIKTOKEN_CACHE_DIR"] = str(Path(spec.origin).parent / "litellm_core_utils" / "tokenizers")
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


def count_text(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def count_messages(messages: Iterable[Mapping[str, Any]]) -> int:
    total = _TOKENS_PER_REPLY
    for message in messages:
        total += _TOKENS_PER_MESSAGE + count_text(_content_text(message.get("content")))
        if name := message.get("name"):
            total += count_text(str(name))
    return total


def message_chars(messages: Iterable[Mapping[str, Any]]) -> int:
    """How many characters `count_messages` would encode (cheap: no tokenizer)."""
    total = 0
    for message in messages:
        total += len(_content_text(message.get("content"))) + len(str(message.get("name") or ""))
    return total


def text_chars(value: Any) -> int:
    """The characters of every string in a JSON value (a request body): about what counting
    its text encodes, found without the tokenizer."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(text_chars(item) for item in value.values())
    if isinstance(value, list):
        return sum(text_chars(item) for item in value)
    return 0


async def off_loop(count: Callable[[], T], chars: int) -> T:
    """`count()`, which encodes about `chars` characters: inline when that is at most
    `INLINE_CHARS`, else in a worker thread, so the event loop never waits on the tokenizer."""
    if chars <= INLINE_CHARS:
        return count()
    return await asyncio.to_thread(count)


async def count_messages_off_loop(messages: Iterable[Mapping[str, Any]]) -> int:
    listed = list(messages)
    return await off_loop(lambda: count_messages(listed), message_chars(listed))
