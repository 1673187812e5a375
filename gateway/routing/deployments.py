"""Deployments: one `model_list` entry each, built once at startup; the provider key is a
`LiveSecret` that stays current (the router reads it once per attempt, `pinned_key`).

A deployment whose provider speaks OpenAI's HTTP protocol natively is served by the direct
forward (`providers/openai_direct.py`); one with `mock_response` by the in-process demo provider
(`providers/demo.py`); every other one by LiteLLM's translation (`providers/litellm_translate.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from meterline.config import MeterlineConfig, ModelDeployment
from meterline.secrets import LiveSecret, SecretRegistry, resolve

# Providers whose chat/completions, completions, embeddings and responses endpoints are
# OpenAI's protocol, with their default base URL (None: api_base is required).
OPENAI_NATIVE: dict[str, str | None] = {
    "openai": "https://api.openai.com/v1",
    "hosted_vllm": None,
    "openai_like": None,
    "deepseek": "https://api.deepseek.com/v1",
    "dashscope": "https://dashscope.aliyuncs.com/compatible-mode/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "groq": "https://api.groq.com/openai/v1",
    "together_ai": "https://api.together.xyz/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "xai": "https://api.x.ai/v1",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
    "perplexity": "https://api.perplexity.ai",
    "lm_studio": None,
}

UPSTREAM_OVERRIDE_KEY = "meterline_upstream"

# litellm_params that are LiteLLM's routing/config knobs, not provider request parameters.
_ROUTING_PARAMS = frozenset(
    {"model", "api_key", "api_base", "rpm", "tpm", "weight", "order", "timeout", "stream_timeout", "max_retries"}
)


class SecretValue:
    """A resolved secret that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value", "previous_values", "version")

    def __init__(self, value: str, version: str | None = None, previous_values: tuple[str, ...] = ()) -> None:
        self._value = value
        self.version = version
        self.previous_values = previous_values
        """The values the live secret had before this one (error scrubbing masks them too)."""

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretValue('**********')"

    __str__ = __repr__


@dataclass(frozen=True, eq=False)
class Deployment:
    id: str
    group: str
    litellm_model: str
    provider: str
    model: str
    """The provider's model name (provider prefix removed): what answers, what is priced."""
    api_base: str | None
    api_key: LiveSecret | SecretValue | None
    """Live at startup; a `SecretValue` (one version, read once) on the copy an attempt uses."""
    direct: bool
    rpm: int | None = None
    tpm: int | None = None
    weight: float = 1.0
    timeout: float | None = None
    extra_params: dict[str, Any] = field(default_factory=dict)
    """Other litellm_params (mock_response, api_version, ...) for the LiteLLM path."""
    model_info: dict[str, Any] = field(default_factory=dict)
    demo_reply: str | None = None
    """The reply of a `mock_response` deployment, answered in process by `providers/demo.py`."""

    @property
    def path(self) -> str:
        """How an attempt reaches the provider: "direct", "demo" or "litellm"."""
        return "direct" if self.direct else "demo" if self.demo_reply is not None else "litellm"


def _split_provider(litellm_model: str, explicit: str | None) -> tuple[str, str]:
    if explicit:
        return explicit, litellm_model.removeprefix(f"{explicit}/")
    provider, sep, rest = litellm_model.partition("/")
    if sep:
        return provider, rest
    return "openai", litellm_model  # LiteLLM's default for a bare model name


def build_deployment(index: int, entry: ModelDeployment, secrets: SecretRegistry | None = None) -> Deployment:
    params = entry.litellm_params.model_dump(exclude_none=True)
    provider, model = _split_provider(params["model"], params.get("custom_llm_provider"))
    api_key = params.get("api_key")
    api_base = params.get("api_base")
    if isinstance(api_base, str):
        api_base = resolve(api_base)
    native = provider in OPENAI_NATIVE
    direct = native and "mock_response" not in params and (api_base or OPENAI_NATIVE[provider]) is not None
    # model_info.meterline_upstream: litellm forces translation (for conformance tests, or a
    # provider whose "OpenAI-compatible" endpoint is not compatible enough).
    demo_reply = params.get("mock_response")
    if entry.model_info.get(UPSTREAM_OVERRIDE_KEY) == "litellm":
        direct = False
        demo_reply = None  # LiteLLM's own mock_response
    if direct and api_base is None:
        api_base = OPENAI_NATIVE[provider]
    timeout = params.get("timeout")
    return Deployment(
        id=f"{entry.model_name}#{index}",
        group=entry.model_name,
        litellm_model=params["model"],
        provider=provider,
        model=model,
        api_base=api_base.rstrip("/") if isinstance(api_base, str) else None,
        api_key=(secrets or SecretRegistry()).live(api_key) if isinstance(api_key, str) else None,
        direct=direct,
        rpm=params.get("rpm"),
        tpm=params.get("tpm"),
        weight=float(params.get("weight") or 1.0),
        timeout=float(timeout) if isinstance(timeout, (int, float, str)) and str(timeout).strip() else None,
        extra_params={k: v for k, v in params.items() if k not in _ROUTING_PARAMS},
        model_info=dict(entry.model_info),
        demo_reply=demo_reply if isinstance(demo_reply, str) else None,
    )


def build_deployments(config: MeterlineConfig, secrets: SecretRegistry | None = None) -> list[Deployment]:
    registry = secrets or SecretRegistry(config.secrets)
    return [build_deployment(i, entry, registry) for i, entry in enumerate(config.model_list)]


def pinned_key(deployment: Deployment) -> Deployment:
    """The deployment as one attempt uses it: its live key read once, so a rotation while the
    request runs does not change the key it started with."""
    key = deployment.api_key
    if not isinstance(key, LiveSecret):
        return deployment
    current = key.current
    return replace(deployment, api_key=SecretValue(current.value, current.version, key.previous_values))
