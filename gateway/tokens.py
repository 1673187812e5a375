"""Token counting for when a provider reports no usage (and for admission estimates).

Uses tiktoken's cl100k_base from the copy bundled inside LiteLLM, so counting never reaches
the internet and needs no `import litellm`. Loaded on first use.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

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
