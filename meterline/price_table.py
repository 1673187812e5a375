"""LiteLLM's bundled price table, read as data: where it is, how a model is looked up in it, and
how an entry's per-token rates and long-context tiers are read. The gateway prices requests from
it (gateway/pricing.py) and the collector checks costs against it (collector/price_rates.py);
neither imports `litellm` (4 s) for it.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

TIER = re.compile(r"^(?P<base>.+)_above_(?P<k>\d+)k_tokens$")
"""A long-context rate: `<rate kind>_above_<k>k_tokens`."""
INPUT, OUTPUT, CACHE_READ, CACHE_WRITE, REASONING = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
)
RATE_KINDS = (INPUT, OUTPUT, CACHE_READ, CACHE_WRITE, REASONING)


def price_table_path() -> Path | None:
    """The table LiteLLM installs with itself, found without importing LiteLLM; None without it."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "model_prices_and_context_window_backup.json"


def entries(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The table's model entries (it also holds a `sample_spec` and the like)."""
    return {name: entry for name, entry in table.items() if isinstance(entry, dict)}


def find(table: dict[str, dict[str, Any]], model: str, provider: str | None) -> dict[str, Any] | None:
    """A model's entry, as LiteLLM looks it up: `provider/model`, then `model`."""
    for name in [f"{provider}/{model}", model] if provider else [model]:
        found = table.get(name)
        if found is not None:
            return found
    return None


def rate_steps(entry: dict[str, Any]) -> tuple[dict[str, float], dict[str, list[tuple[int, float]]]]:
    """An entry's base rate per kind, and per kind its long-context steps (input tokens above
    which a rate applies, ascending). Scans the entry's ~200 keys: callers keep the result."""
    base = {kind: _number(entry.get(kind)) for kind in RATE_KINDS}
    tiers: dict[str, list[tuple[int, float]]] = {}
    for key, value in entry.items():
        match = TIER.match(key)
        if match and match.group("base") in base and isinstance(value, int | float) and not isinstance(value, bool):
            tiers.setdefault(match.group("base"), []).append((int(match.group("k")) * 1000, float(value)))
    return base, {kind: sorted(steps) for kind, steps in tiers.items()}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
