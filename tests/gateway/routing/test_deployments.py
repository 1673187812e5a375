"""Which path serves a deployment: the direct forward, the in-process demo provider, or LiteLLM."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.routing.deployments import build_deployment
from meterline.config import ModelDeployment


def path_of(params: dict[str, Any], info: dict[str, Any] | None = None) -> tuple[str, str | None]:
    entry = ModelDeployment.model_validate({"model_name": "g", "litellm_params": params, "model_info": info or {}})
    deployment = build_deployment(0, entry)
    return deployment.path, deployment.demo_reply


@pytest.mark.parametrize(
    ("params", "info", "expected"),
    [
        ({"model": "openai/gpt-4o-mini"}, None, ("direct", None)),
        ({"model": "anthropic/claude-haiku-4-5"}, None, ("litellm", None)),
        ({"model": "openai/gpt-4o-mini", "mock_response": "hi"}, None, ("demo", "hi")),
        ({"model": "anthropic/claude-haiku-4-5", "mock_response": "hi"}, None, ("demo", "hi")),
        # LiteLLM's own mock when the config asks for LiteLLM.
        ({"model": "openai/gpt-4o-mini", "mock_response": "hi"}, {"meterline_upstream": "litellm"}, ("litellm", None)),
    ],
)
def test_path(params: dict[str, Any], info: dict[str, Any] | None, expected: tuple[str, str | None]) -> None:
    assert path_of(params, info) == expected
