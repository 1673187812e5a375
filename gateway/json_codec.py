"""JSON on the request path: orjson (several times faster than the standard library), with the
standard library where orjson would refuse what a client or provider may send.

Client bodies are still parsed by the standard library (chat_request.py): orjson turns integers
beyond 64 bits into floats, which would change a value the gateway forwards.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

loads = orjson.loads
"""Provider bodies and stream chunks (read for the ledger, passed on as received). Raises
orjson.JSONDecodeError, a ValueError."""


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON (no ASCII escaping), as the gateway sends it upstream and to clients."""
    try:
        return orjson.dumps(data)
    except TypeError:  # an integer beyond 64 bits, which orjson refuses
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def dumps_sorted(data: Any) -> str:
    """Compact JSON with sorted keys and ASCII escapes: the usage block as the ledger keeps it."""
    try:
        text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        text = ""
    if text and text.isascii():
        return text
    return json.dumps(data, separators=(",", ":"), sort_keys=True)  # escapes what orjson would not
