"""Types of the native OTLP decoder (collector/_otlp_native.pyx)."""

from collections.abc import Callable
from typing import Any

DEF_UNUSED: int
DEF_IRREGULAR: int

class WireError(ValueError): ...

class ExportedColumns:
    """The decoded columns as an Arrow C data interface struct array, until pyarrow takes them."""

    @property
    def address(self) -> int: ...

def valid_utf8(data: bytes) -> bool: ...

class UsageDecoder:
    def __init__(
        self,
        keys: tuple[bytes, ...],
        kinds: tuple[int, ...],
        fills: tuple[Any, ...],
        required: object,
        request_index: int,
        trace_index: int,
        span_index: int,
        slow_attribute: Callable[[bytes], tuple[int, Any]],
    ) -> None: ...
    def decode(
        self, body: bytes, irregular: Callable[[str, bytes], list[Any] | None]
    ) -> tuple[ExportedColumns, list[str]]: ...
