"""Types of the native OTLP attribute encoder (gateway/telemetry/_otlp_encode.pyx)."""

from collections.abc import Callable, Iterable
from typing import Any

def attributes(number: int, values: Iterable[tuple[str, Any]], fallback: Callable[[int, str, Any], bytes]) -> bytes: ...
