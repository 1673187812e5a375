"""Request cost from LiteLLM's price table, and which table that was."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
from typing import Any

from gateway.token_usage import TokenUsage

log = logging.getLogger(__name__)


class PriceBook:
    """Prices tokens with the LiteLLM price table loaded in this process."""

    def __init__(self, litellm_module: Any) -> None:
        self._litellm = litellm_module
        table = json.dumps(litellm_module.model_cost, sort_keys=True, default=str).encode()
        self.version = f"litellm-{importlib.metadata.version('litellm')}+{hashlib.sha256(table).hexdigest()[:12]}"

    def is_priced(self, model: str) -> bool:
        try:
            info = self._litellm.get_model_info(model)
        except Exception:  # noqa: BLE001 - LiteLLM raises a bare Exception for unmapped models
            return False
        return bool(info.get("input_cost_per_token") or info.get("output_cost_per_token"))

    def cost_usd(self, model: str, provider: str | None, usage: TokenUsage) -> float:
        """Cost with cache-read and cache-write rates; 0.0 only for an unpriced model (logged)."""
        try:
            prompt_cost, completion_cost = self._litellm.cost_per_token(
                model=model,
                custom_llm_provider=provider,
                prompt_tokens=usage.input_tokens,
                completion_tokens=usage.output_tokens,
                cache_read_input_tokens=usage.cache_read_input_tokens,
                cache_creation_input_tokens=usage.cache_creation_input_tokens,
            )
        except Exception as exc:  # noqa: BLE001 - an unpriced model must not fail the request; it is flagged
            log.warning("no price for model %s (%s); cost recorded as 0", model, type(exc).__name__)
            return 0.0
        return float(prompt_cost) + float(completion_cost)
