"""Types of the native span decoder (collector/_otlp_spans.pyx)."""

from collections.abc import Callable
from typing import Any

class ExportedSpans:
    """The decoded columns as an Arrow C data interface struct array, until pyarrow takes them."""

    @property
    def address(self) -> int: ...

def column_kinds() -> tuple[int, ...]: ...

class SpanDecoder:
    def __init__(
        self, promoted_keys: tuple[bytes, ...], kind_names: tuple[str, ...], status_names: tuple[str, ...]
    ) -> None: ...
    def decode(
        self,
        body: bytes,
        resource: Callable[[bytes], tuple[str | None, str]],
        scope: Callable[[bytes], str | None],
        irregular: Callable[[str, bytes, str | None, str | None, str], tuple[Any, ...] | None],
    ) -> ExportedSpans: ...
