"""Random ids (request, trace and span ids) from os.urandom, fetched 4 KiB at a time.

A request takes a request id, a trace id and one or more span ids; `secrets.token_hex` or
`os.urandom` per id is a `getrandom` system call each, three or four per request. Here each
size has a queue of ready hex ids cut from one `os.urandom(4096)`: the same randomness, one
system call per 256 (or 512) ids. `deque.popleft` is atomic, so threads never share an id, and
a forked child empties the queues so parent and child never do either.
"""

from __future__ import annotations

import os
from collections import deque

_REFILL_BYTES = 4096

_queues: dict[int, deque[str]] = {8: deque(), 16: deque()}


def random_hex(nbytes: int) -> str:
    """`nbytes` (8 or 16) random bytes as lowercase hex, like `secrets.token_hex(nbytes)`."""
    queue = _queues[nbytes]
    try:
        return queue.popleft()
    except IndexError:
        data = os.urandom(_REFILL_BYTES)
        queue.extend(data[at : at + nbytes].hex() for at in range(0, _REFILL_BYTES, nbytes))
        return queue.popleft()


def _forget() -> None:
    for queue in _queues.values():
        queue.clear()


os.register_at_fork(after_in_child=_forget)
