"""What on-call reads: one `Message` per alarm, rendered by each channel in its own format."""

from __future__ import annotations

import json
import math
import urllib.parse
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["info", "warning", "critical", "resolved"]


@dataclass(frozen=True)
class Message:
    title: str
    lines: list[str]
    """Plain text lines (no markup), one fact each; channels add their own formatting."""
    severity: Severity = "warning"
    link: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    """The numbers behind the lines, for machine readers (the generic webhook)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Message:
        return cls(**json.loads(text))


def dashboard_link(dashboard_url: str | None, scope: str, period: str, budget: str | None = None) -> str | None:
    """`{dashboard_url}/?scope=...&budget=...&period=...`: the dashboard filtered to the alarm's
    scope and period, showing the budget (dashboards/filters.py reads these)."""
    if not dashboard_url:
        return None
    params = {"scope": scope, **({"budget": budget} if budget else {}), "period": period}
    return f"{dashboard_url.rstrip('/')}/?{urllib.parse.urlencode(params)}"


def usd(value: float) -> str:
    """Money as on-call reads it: the currency, and cents, or for an amount under a dollar
    enough decimals to show two significant digits, so a small budget never reads
    `$0.00 of $0.00 (64.5%)` (`US$0.0042`, `US$0.50`, `US$1,234.50`)."""
    size = abs(value)
    decimals = 2 if size == 0 or size >= 1 else max(2, 1 - math.floor(math.log10(size)))
    return f"{'-' if value < 0 else ''}US${size:,.{decimals}f}"


def top_line(label: str, top: list[tuple[str, float]]) -> str:
    return f"Top {label}: " + (", ".join(f"{name} {usd(cost)}" for name, cost in top) or "none")
