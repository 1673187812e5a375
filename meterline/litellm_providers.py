"""The providers the installed LiteLLM knows, read from its source files without importing it.

`import litellm` takes seconds; the provider names are the values of its `LlmProviders` enum
(`litellm/types/utils.py`) plus its JSON-configured OpenAI-compatible providers
(`litellm/llms/openai_like/providers.json`), the two lists `get_llm_provider` accepts a
`provider/model` prefix from. Reading both takes about 2 ms.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from pathlib import Path

_ENUM = re.compile(r"^class LlmProviders\(str, Enum\):\n(?P<body>.*?)(?=^\S)", re.MULTILINE | re.DOTALL)
_MEMBER = re.compile(r'^\s+[A-Z][A-Z0-9_]*\s*=\s*"(?P<value>[^"]+)"', re.MULTILINE)


@functools.cache
def known_providers() -> frozenset[str] | None:
    """Every provider name LiteLLM accepts; None when its files cannot be read (then nobody
    should refuse a provider on this list's word)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    try:
        enum = _ENUM.search((root / "types" / "utils.py").read_text(encoding="utf-8"))
        json_providers = json.loads((root / "llms" / "openai_like" / "providers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if enum is None:
        return None
    names = {match["value"] for match in _MEMBER.finditer(enum["body"])}
    return frozenset(names | set(json_providers)) if names else None


def provider_of(model: str, explicit: str | None = None) -> str | None:
    """The provider a `litellm_params.model` names: `custom_llm_provider`, else the prefix
    before the first `/`; None for a bare model name (LiteLLM looks those up by name)."""
    if explicit:
        return explicit
    provider, sep, _ = model.partition("/")
    return provider if sep else None
