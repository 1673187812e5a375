"""Per-token rates from LiteLLM's bundled price table, read as data for the collector's cost
checks: the collector never imports `litellm` (4 s), it only reads the JSON file the gateway's
`PriceBook` prices from (gateway/pricing.py), with the same lookup (`provider/model`, then `model`)
and the same rate kinds, long-context tiers included.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_TIER = re.compile(r"^(?P<base>.+)_above_(?P<k>\d+)k_tokens$")
_INPUT, _OUTPUT, _CACHE_READ, _CACHE_WRITE, _REASONING = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
)
_RATE_KINDS = (_INPUT, _OUTPUT, _CACHE_READ, _CACHE_WRITE, _REASONING)


@dataclass(frozen=True, slots=True)
class ModelRates:
    """What the gateway can charge per token for one model."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    highest: float
    """The highest rate of any kind and any long-context tier: no record of this model can
    cost more than its tokens times this."""


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def rates_of(entry: dict[str, Any]) -> ModelRates | None:
    """The rates of one price-table entry; None when it prices no token (a model priced per image
    or second, or not at all)."""
    base = {kind: _number(entry.get(kind)) for kind in _RATE_KINDS}
    if not (base[_INPUT] or base[_OUTPUT]):
        return None  # PriceBook.is_priced: neither input nor output is priced
    highest = max(base.values())
    for key, value in entry.items():
        match = _TIER.match(key)
        if match and match.group("base") in base:
            highest = max(highest, _number(value))
    return ModelRates(
        input=base[_INPUT],
        output=base[_OUTPUT],
        cache_read=base[_CACHE_READ] or base[_INPUT],
        cache_write=base[_CACHE_WRITE] or base[_INPUT],
        highest=highest,
    )


class PriceRates:
    """Model -> ModelRates, looked up like the gateway's PriceBook."""

    def __init__(self, table: dict[str, Any]) -> None:
        self._table = {k: v for k, v in table.items() if isinstance(v, dict)}
        self._cache: dict[tuple[str, str | None], ModelRates | None] = {}

    @classmethod
    def bundled(cls) -> PriceRates | None:
        """LiteLLM's bundled table, or None (with a warning) when LiteLLM is not installed."""
        spec = importlib.util.find_spec("litellm")  # finds the package without importing it
        if spec is None or spec.origin is None:
            log.warning("collector: litellm is not installed; costs are not checked against prices")
            return None
        path = Path(spec.origin).parent / "model_prices_and_context_window_backup.json"
        try:
            return cls(json.loads(path.read_bytes()))
        except (OSError, ValueError) as exc:
            log.warning("collector: cannot read the price table %s (%s); costs are not checked", path, exc)
            return None

    def lookup(self, model: str, provider: str | None) -> ModelRates | None:
        key = (model, provider)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found: ModelRates | None = None
        for name in [f"{provider}/{model}", model] if provider else [model]:
            entry = self._table.get(name)
            if entry is not None:
                found = rates_of(entry)
                break
        if len(self._cache) < 10_000:  # model names come from senders: bounded
            self._cache[key] = found
        return found
