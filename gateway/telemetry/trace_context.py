"""W3C trace context: continue an agent's trace, or start a new one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.telemetry.random_ids import random_hex

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    span_id: str
    parent_span_id: str | None


def new_span_id() -> str:
    return random_hex(8)


def from_traceparent(header: str | None) -> TraceContext:
    """A server span context: child of the agent's span when `traceparent` is valid, else a new trace."""
    if header:
        match = _TRACEPARENT.match(header.strip().lower())
        if match and match.group(1) != _INVALID_TRACE and match.group(2) != _INVALID_SPAN:
            return TraceContext(trace_id=match.group(1), span_id=new_span_id(), parent_span_id=match.group(2))
    return TraceContext(trace_id=random_hex(16), span_id=new_span_id(), parent_span_id=None)


def is_sampled(trace_id: str, ratio: float) -> bool:
    """Deterministic by trace id (like OTel's TraceIdRatioBased), so one trace is kept or dropped whole."""
    if ratio >= 1.0:
        return True
    if ratio <= 0.0:
        return False
    return int(trace_id[16:], 16) < int(ratio * (1 << 64))
