"""The provider list read from LiteLLM's files is the one LiteLLM itself accepts."""

from __future__ import annotations

import sys

import pytest

from meterline.litellm_providers import known_providers, provider_of


def test_reading_the_list_does_not_import_litellm() -> None:
    known_providers.cache_clear()
    before = "litellm" in sys.modules
    assert known_providers()
    assert ("litellm" in sys.modules) == before


def test_the_list_is_litellms_own() -> None:
    litellm = pytest.importorskip("litellm")
    from litellm.llms.openai_like.json_loader import JSONProviderRegistry

    JSONProviderRegistry.load()  # type: ignore[no-untyped-call]
    theirs = {str(getattr(p, "value", p)) for p in litellm.provider_list} | set(JSONProviderRegistry._providers)
    assert set(known_providers() or ()) == theirs


@pytest.mark.parametrize(
    ("model", "explicit", "provider"),
    [
        ("openai/gpt-4o-mini", None, "openai"),
        ("openrouter/anthropic/claude-3.5-sonnet", None, "openrouter"),
        ("gpt-4o", None, None),
        ("my-deployment", "azure", "azure"),
    ],
)
def test_provider_of(model: str, explicit: str | None, provider: str | None) -> None:
    assert provider_of(model, explicit) == provider
