"""Types of the native span decoder (collector/_otlp_spans.pyx)."""

from collections.abc import Callable
from typing import Any

from collector._otlp_native import ExportedColumns

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
    ) -> ExportedColumns: ...
