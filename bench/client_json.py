"""What reading a client body strictly costs (gateway/client_json.py) over the plain parse it
replaced (`json.loads(body)`), per body shape, in one process.

    .venv/bin/python -m bench.client_json [--rounds 7]

Each round times both readers on each body, alternated (plain, strict, plain, strict, ...);
the table shows the median of the rounds' per-call means, in microseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from gateway.client_json import loads_client

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a thing up.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "enum": ["x", "y"]},
                "ids": {"type": "array", "items": {"type": "integer"}},
            },
            "required": ["query"],
        },
    },
}
MESSAGE = {"role": "user", "content": "Tell me about the lighthouse keeper and the storm. " * 5}


def bodies() -> dict[str, bytes]:
    return {
        "chat, 1 message (no check needed)": json.dumps({"model": "m", "messages": [MESSAGE]}).encode(),
        "chat, 10 messages + 20 tools (> 128 brackets)": json.dumps(
            {"model": "m", "messages": [MESSAGE] * 10, "tools": [TOOL] * 20}
        ).encode(),
        "chat, emoji as escaped surrogate pairs": json.dumps(
            {"model": "m", "messages": [{"role": "user", "content": "hi \U0001f600 " * 50}] * 10}
        ).encode(),
        "embeddings, 2,000 x 256 token ids (3 MB)": json.dumps({"model": "m", "input": [[1234] * 256] * 2000}).encode(),
    }


def per_call(read: Callable[[bytes], Any], body: bytes) -> float:
    calls = max(3, 2_000_000 // max(len(body), 1))
    start = time.perf_counter()
    for _ in range(calls):
        read(body)
    return (time.perf_counter() - start) / calls * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    print("| body | bytes | json.loads us | loads_client us | added us |")
    print("| --- | --- | --- | --- | --- |")
    for name, body in bodies().items():
        plain, strict = [], []
        for _ in range(args.rounds):
            plain.append(per_call(json.loads, body))
            strict.append(per_call(loads_client, body))
        a, b = statistics.median(plain), statistics.median(strict)
        print(f"| {name} | {len(body):,} | {a:,.1f} | {b:,.1f} | {b - a:+,.1f} |")


if __name__ == "__main__":
    main()
