"""Which request fields a client may pass through to LiteLLM.

LiteLLM takes connection settings, credentials and test switches as ordinary keyword arguments
beside the provider's parameters. A client body spread into those arguments could point the
call (and the provider key) at its own `api_base`, or ask for a free `mock_response`. Such
fields are dropped before LiteLLM sees the request; the deployment's own settings always win.
"""

from __future__ import annotations

from typing import Any

_RESERVED = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "organization",
        "custom_llm_provider",
        "deployment_id",
        "headers",
        "extra_headers",
        "timeout",
        "num_retries",
        "max_retries",
        "fallbacks",
        "model_list",
        "client",
        "caching",
        "cache",
        "metadata",
        "proxy_server_request",
        "custom_cost_per_token",
        "input_cost_per_token",
        "output_cost_per_token",
        "region_name",
        "project",
        "location",
    }
)
_RESERVED_PREFIXES = ("mock_", "litellm_", "aws_", "vertex_", "azure_", "watsonx_")


def is_reserved(name: str) -> bool:
    return name in _RESERVED or name.startswith(_RESERVED_PREFIXES)


def for_litellm(params: dict[str, Any]) -> dict[str, Any]:
    """`params` without the fields that steer LiteLLM itself rather than the provider."""
    return {name: value for name, value in params.items() if not is_reserved(name)}
