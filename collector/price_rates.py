"""Per-token rates for the collector's cost checks, from LiteLLM's bundled price table as
`meterline/price_table.py` reads it for the gateway's `PriceBook` too (same file, same lookup,
same rate kinds and long-context tiers), so the collector never imports `litellm` (4 s).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from meterline.price_table import CACHE_READ, CACHE_WRITE, INPUT, OUTPUT, entries, find, price_table_path, rate_steps

log = logging.getLogger(__name__)


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


def rates_of(entry: dict[str, Any]) -> ModelRates | None:
    """The rates of one price-table entry; None when it prices no token (a model priced per image
    or second, or not at all)."""
    base, tiers = rate_steps(entry)
    if not (base[INPUT] or base[OUTPUT]):
        return None  # PriceBook.is_priced: neither input nor output is priced
    highest = max([*base.values(), *(rate for steps in tiers.values() for _, rate in steps)])
    return ModelRates(
        input=base[INPUT],
        output=base[OUTPUT],
        cache_read=base[CACHE_READ] or base[INPUT],
        cache_write=base[CACHE_WRITE] or base[INPUT],
        highest=highest,
    )


class PriceRates:
    """Model -> ModelRates, looked up like the gateway's PriceBook."""

    def __init__(self, table: dict[str, Any]) -> None:
        self._table = entries(table)
        self._cache: dict[tuple[str, str | None], ModelRates | None] = {}

    @classmethod
    def bundled(cls) -> PriceRates | None:
        """LiteLLM's bundled table, or None (with a warning) when LiteLLM is not installed."""
        path = price_table_path()
        if path is None:
            log.warning("collector: litellm is not installed; costs are not checked against prices")
            return None
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
        entry = find(self._table, model, provider)
        found = None if entry is None else rates_of(entry)
        if len(self._cache) < 10_000:  # model names come from senders: bounded
            self._cache[key] = found
        return found
