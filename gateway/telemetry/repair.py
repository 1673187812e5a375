"""Usage records whose text cannot be encoded: repaired, flagged, and still billed.

A Python string can hold what UTF-8 cannot: a lone surrogate (`"\\ud800"`, which JSON allows as
an escape), from a request's model name, a tag or a provider's error text. Encoding the record
for the spool would fail; the record is repaired instead of lost.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from meterline.usage_record import UsageRecord

_SURROGATES = re.compile("[\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


def _clean(value: str) -> str:
    return _SURROGATES.sub(_REPLACEMENT, value)


def repaired(record: UsageRecord) -> UsageRecord | None:
    """A copy of `record` with every lone surrogate of every string (tag keys and values
    included) replaced by U+FFFD and `text_repaired` set; None when no string needed it."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if isinstance(value, str) and _SURROGATES.search(value):
            changes[f.name] = _clean(value)
        elif isinstance(value, dict) and any(
            _SURROGATES.search(k) or (isinstance(v, str) and _SURROGATES.search(v)) for k, v in value.items()
        ):
            changes[f.name] = {_clean(k): _clean(v) if isinstance(v, str) else v for k, v in value.items()}
    if not changes:
        return None
    return dataclasses.replace(record, **changes, text_repaired=True)
