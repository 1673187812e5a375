"""LiteLLM's per-call success log, skipped for the gateway's own calls.

After every non-stream call LiteLLM schedules a task that prices the response again and builds
its standard logging payload for callbacks, whether or not a callback is registered. Meterline
registers none: it meters usage and cost itself, from the provider's usage block. That task is
~10 % of a bare `litellm.acompletion`'s instructions (14.5 -> 13.0 M per call,
`bench/translation.py --callgrind`), and inside the gateway it runs after the response, with
LiteLLM's data already evicted from the caches by the gateway's own work.

No LiteLLM setting turns it off (`no-log` only skips callbacks; the payload is still built).
The one switch is the context variable LiteLLM sets around its own nested calls
(`litellm._internal_context.is_internal_call`), a LiteLLM internal: while it is set, LiteLLM
skips its success and failure logging and its proxy budget bookkeeping, and nothing else; the
response, the exception mapping and the usage block are the same. Without the variable (another
LiteLLM version) calls are logged as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache


@cache
def _flag() -> ContextVar[bool] | None:
    try:
        from litellm._internal_context import is_internal_call
    except ImportError:
        return None
    return is_internal_call


@contextmanager
def no_success_log() -> Iterator[None]:
    """LiteLLM calls started inside skip LiteLLM's own success and failure logging. Its sync half
    runs in an executor with a copy of this context, so it sees the flag too."""
    flag = _flag()
    if flag is None:
        yield
        return
    token = flag.set(True)
    try:
        yield
    finally:
        flag.reset(token)
