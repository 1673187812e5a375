"""Which LiteLLM settings in meterline.yaml Meterline does not act on.

A LiteLLM proxy config loads unchanged; keys Meterline ignores are listed once at startup
(names only, never values: many are secrets), so nobody believes a setting works that doesn't.
When the gateway starts honouring a LiteLLM key, add its path to `USED_SETTINGS`.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from meterline.config import MeterlineConfig

USED_SETTINGS: frozenset[str] = frozenset(
    {
        "model_list[].model_name",
        "model_list[].model_info",
        *(
            f"model_list[].litellm_params.{key}"
            for key in (
                "model",
                "api_key",
                "api_base",
                "api_version",
                "rpm",
                "tpm",
                "timeout",
                "stream_timeout",
                "max_retries",
                "weight",
                "order",
                "mock_response",
                "organization",
                "custom_llm_provider",
                "input_cost_per_token",
                "output_cost_per_token",
            )
        ),
        *(
            f"router_settings.{key}"
            for key in (
                "routing_strategy",
                "num_retries",
                "timeout",
                "fallbacks",
                "context_window_fallbacks",
                "allowed_fails",
                "cooldown_time",
                "retry_after",
            )
        ),
        *(
            f"litellm_settings.{key}"
            for key in ("drop_params", "num_retries", "request_timeout", "set_verbose", "json_logs")
        ),
        "general_settings.master_key",
    }
)
"""Settings in LiteLLM's sections that Meterline acts on. `[]` stands for any list index; a
listed path covers everything beneath it (`model_list[].model_info` takes the whole mapping)."""

LITELLM_SECTIONS: tuple[str, ...] = (
    "model_list",
    "router_settings",
    "litellm_settings",
    "general_settings",
    "environment_variables",
    "credential_list",
    "callback_settings",
    "guardrails",
)
"""The top-level sections that come from LiteLLM's config.yaml, in report order."""


def unused_settings(config: MeterlineConfig) -> list[str]:
    """Dotted paths (`general_settings.database_url`, `model_list[2].litellm_params.aws_region_name`)
    of the LiteLLM settings present in `config` that Meterline does not act on: section by
    section in `LITELLM_SECTIONS` order, keys in file order.
    An unused mapping or list is reported once, not key by key."""
    unused: list[str] = []
    for section in LITELLM_SECTIONS:
        value = _plain(getattr(config, section))
        if isinstance(value, dict):
            for key, child in value.items():
                _walk(child, f"{section}.{key}", f"{section}.{key}", unused)
        elif isinstance(value, list):
            for index, child in enumerate(value):
                _walk(child, f"{section}[{index}]", f"{section}[]", unused)
    return unused


def log_unused_settings(config: MeterlineConfig, logger: logging.Logger) -> None:
    """One warning naming every LiteLLM setting Meterline ignores (names only); nothing when none."""
    unused = unused_settings(config)
    if unused:
        logger.warning(
            "%d LiteLLM setting(s) in the config are accepted but not acted on by Meterline: %s",
            len(unused),
            ", ".join(unused),
        )


def _walk(value: Any, path: str, pattern: str, unused: list[str]) -> None:
    if pattern in USED_SETTINGS:
        return
    value = _plain(value)
    if isinstance(value, dict) and _has_used_below(pattern + "."):
        for key, child in value.items():
            _walk(child, f"{path}.{key}", f"{pattern}.{key}", unused)
    elif isinstance(value, list) and _has_used_below(pattern + "[]"):
        for index, child in enumerate(value):
            _walk(child, f"{path}[{index}]", f"{pattern}[]", unused)
    else:
        unused.append(path)


def _has_used_below(prefix: str) -> bool:
    return any(used.startswith(prefix) for used in USED_SETTINGS)


def _plain(value: Any) -> Any:
    """Section models as the mappings the user wrote: only keys present in the file."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    return value
