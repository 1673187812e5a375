"""The provider side: a LiteLLM Router built from the config's LiteLLM sections."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, cast

# LiteLLM fetches its price table from the internet at import unless told not to; the bundled
# table is the one we record as price_version.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from litellm.router import Router

from gateway.chat_request import ChatRequest
from gateway.pricing import PriceBook
from meterline.config import MeterlineConfig
from meterline.secret_refs import resolve

# litellm_params values that may be secret references and are resolved before LiteLLM sees them.
_SECRET_PARAMS = ("api_key", "api_base", "aws_secret_access_key", "aws_access_key_id", "vertex_credentials")


@dataclass(frozen=True, slots=True)
class Answer:
    """Who answered a request, read from LiteLLM's response metadata."""

    model: str
    provider: str | None
    attempts: int
    fallback_used: bool


class Upstream:
    def __init__(self, config: MeterlineConfig) -> None:
        # LiteLLM logs every call at INFO (twice); the gateway's own records carry that information.
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
            logging.getLogger(name).setLevel(logging.WARNING)
        for name, value in config.litellm_settings.items():
            if hasattr(litellm, name):
                setattr(litellm, name, value)
        model_list = []
        self._group_model: dict[str, str] = {}
        for deployment in config.model_list:
            params = deployment.litellm_params.model_dump(exclude_none=True)
            for name in _SECRET_PARAMS:
                if isinstance(params.get(name), str):
                    params[name] = resolve(params[name])
            model_list.append(
                {"model_name": deployment.model_name, "litellm_params": params, "model_info": deployment.model_info}
            )
            self._group_model.setdefault(deployment.model_name, deployment.litellm_params.model)
        rs = config.router_settings
        self.router = Router(
            model_list=model_list,
            routing_strategy=cast(Any, rs.routing_strategy),  # LiteLLM validates the name
            num_retries=rs.num_retries,
            timeout=rs.timeout,
            fallbacks=rs.fallbacks or [],
        )
        self.prices = PriceBook(litellm)

    @property
    def model_groups(self) -> list[str]:
        return list(self._group_model)

    def has_group(self, name: str) -> bool:
        return name in self._group_model

    def count_input_tokens(self, group: str, messages: list[dict[str, Any]]) -> int:
        return int(litellm.token_counter(model=self._group_model[group], messages=messages))

    async def chat(self, request: ChatRequest, input_tokens: int) -> Any:
        """LiteLLM's answer: a ModelResponse, or an async iterator of chunks for a stream."""
        extra: dict[str, Any] = {}
        if request.stream:
            # Always ask for usage so every stream is metered; the chunk is stripped later
            # if the client did not ask for it.
            extra["stream_options"] = {"include_usage": True}
        return await self.router.acompletion(
            model=request.model,
            messages=cast(Any, request.messages),
            stream=request.stream,
            # The admission estimate of input tokens; LiteLLM's mock provider reports it as usage.
            metadata={"user_api_key_budget_reservation": {"input_tokens": input_tokens}},
            **request.params,
            **extra,
        )

    def answer_of(self, response: Any, group: str) -> Answer:
        hidden = getattr(response, "_hidden_params", None) or {}
        model = hidden.get("litellm_model_name") or self._group_model[group]
        provider = hidden.get("custom_llm_provider")
        if provider is None:
            try:
                provider = litellm.get_llm_provider(model=model)[1]
            except Exception:  # noqa: BLE001 - an unknown provider prefix only loses the label, not the request
                provider = None
        if provider and model.startswith(f"{provider}/"):
            model = model[len(provider) + 1 :]
        headers = hidden.get("additional_headers") or {}
        retries = int(headers.get("x-litellm-attempted-retries") or 0)
        fallbacks = int(headers.get("x-litellm-attempted-fallbacks") or 0)
        return Answer(model=model, provider=provider, attempts=1 + retries, fallback_used=fallbacks > 0)
