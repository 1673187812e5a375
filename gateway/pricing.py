"""Request cost from LiteLLM's price table, read as data (no `import litellm` on the fast path).

Rates per token kind, as LiteLLM's table names them: `input_cost_per_token`,
`output_cost_per_token`, `cache_read_input_token_cost`, `cache_creation_input_token_cost`,
`output_cost_per_reasoning_token`, and the long-context tiers `*_above_<N>k_tokens`, which
apply to the whole request once its input exceeds N thousand tokens. Input tokens include
cached reads and cache writes (OpenTelemetry GenAI meaning), so the plain input rate applies to
`input - cache_read - cache_creation`. `tests/gateway/test_pricing.py` checks this against
`litellm.cost_per_token` for the models people use.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
from pathlib import Path
from typing import Any

from gateway.token_usage import TokenUsage
from meterline.price_table import entries, find, price_table_path, rate_steps

log = logging.getLogger(__name__)


def _price_table_path() -> Path:
    path = price_table_path()
    if path is None:
        raise RuntimeError("litellm is not installed; its price table is Meterline's price source")
    return path


class PriceBook:
    """LiteLLM's bundled price table; `version` names exactly which table priced a request."""

    def __init__(self, table: dict[str, Any] | None = None) -> None:
        if table is None:
            raw = _price_table_path().read_bytes()
            table = json.loads(raw)
            digest = hashlib.sha256(raw).hexdigest()[:12]
        else:
            digest = hashlib.sha256(json.dumps(table, sort_keys=True).encode()).hexdigest()[:12]
        self._table = entries(table)
        self._tiers: dict[int, tuple[dict[str, float], dict[str, list[tuple[int, float]]]]] = {}
        # (model, provider) -> entry, so a request looks its model up once, not per candidate name.
        self._entries: dict[tuple[str, str | None], dict[str, Any] | None] = {}
        self.version = f"litellm-{importlib.metadata.version('litellm')}+{digest}"

    def entry(self, model: str, provider: str | None) -> dict[str, Any] | None:
        try:
            return self._entries[(model, provider)]
        except KeyError:
            pass
        found = find(self._table, model, provider)
        if len(self._entries) < 10_000:  # models come from the config and providers; bounded anyway
            self._entries[(model, provider)] = found
        return found

    def is_priced(self, model: str, provider: str | None) -> bool:
        entry = self.entry(model, provider)
        return bool(entry and (entry.get("input_cost_per_token") or entry.get("output_cost_per_token")))

    def _parsed(self, entry: dict[str, Any]) -> tuple[dict[str, float], dict[str, list[tuple[int, float]]]]:
        # Parsed once per model: scanning an entry's ~200 keys with a regex per request would
        # cost more than the rest of the pricing.
        cached = self._tiers.get(id(entry))
        if cached is None:
            cached = self._tiers[id(entry)] = rate_steps(entry)
        return cached

    def rates(self, entry: dict[str, Any], input_tokens: int) -> dict[str, float]:
        """The rates that apply at `input_tokens`; the returned dict must not be changed."""
        base, tiers = self._parsed(entry)
        if not tiers:
            return base
        rates = dict(base)
        for kind, steps in tiers.items():
            for threshold, rate in steps:
                if input_tokens > threshold:
                    rates[kind] = rate
        return rates

    def cost_usd(self, model: str, provider: str | None, usage: TokenUsage) -> float:
        """Cost with cache and reasoning rates; 0.0 for a model the table does not price."""
        entry = self.entry(model, provider)
        if entry is None:
            return 0.0
        rates = self.rates(entry, usage.input_tokens)
        cache_read_rate = rates["cache_read_input_token_cost"] or rates["input_cost_per_token"]
        cache_write_rate = rates["cache_creation_input_token_cost"] or rates["input_cost_per_token"]
        plain_input = max(0, usage.input_tokens - usage.cache_read_input_tokens - usage.cache_creation_input_tokens)
        cost = (
            plain_input * rates["input_cost_per_token"]
            + usage.cache_read_input_tokens * cache_read_rate
            + usage.cache_creation_input_tokens * cache_write_rate
        )
        reasoning_rate = rates["output_cost_per_reasoning_token"]
        if reasoning_rate:
            plain_output = max(0, usage.output_tokens - usage.reasoning_output_tokens)
            cost += plain_output * rates["output_cost_per_token"] + usage.reasoning_output_tokens * reasoning_rate
        else:
            cost += usage.output_tokens * rates["output_cost_per_token"]
        return cost
