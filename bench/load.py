"""Load generators: wrk with a Lua script when /usr/bin/wrk exists, else a separate Python process.

Both keep `concurrency` HTTP/1.1 keep-alive connections busy for `seconds`, each request read to
the end (a stream's latency is to its last byte), and report the same `LoadResult`.

The Python generator runs as its own pinned process:
    python -m bench.load URL BODY_JSON KEY CONCURRENCY SECONDS
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

WRK = shutil.which("wrk")

_LUA = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {{\\"requests\\": %d, \\"duration_s\\": %f, \\"errors\\": %d, \\"p50_ms\\": %f, \\"p99_ms\\": %f}}\\n",
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
"""


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    duration_s: float
    errors: int  # connection errors, timeouts and non-2xx answers
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_load(url: str, body: dict[str, object], key: str, concurrency: int, seconds: float, cpus: str) -> LoadResult:
    """POSTs `body` to `url` from a process pinned to `cpus`."""
    if WRK:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(_LUA.format(body=_lua_string(json.dumps(body)), key=key))
        command = [
            WRK,
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            script.name,
            url,
        ]
    else:
        command = [sys.executable, "-m", "bench.load", url, json.dumps(body), key, str(concurrency), str(seconds)]
    try:
        done = subprocess.run(["taskset", "-c", cpus, *command], capture_output=True, text=True, timeout=seconds + 120)
        if done.returncode != 0:
            raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr.strip()}")
        output = done.stdout
    finally:
        if WRK:
            Path(script.name).unlink()
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return LoadResult(**json.loads(line[7:]))


async def _python_load(url: str, body: str, key: str, concurrency: int, seconds: float) -> LoadResult:
    import httpx

    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    deadline = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                async with client.stream("POST", url, content=body, headers=headers) as response:
                    async for _ in response.aiter_raw():
                        pass
                    if response.status_code >= 300:
                        errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - t0)

    t0 = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    latencies.sort()
    n = len(latencies)
    return LoadResult(
        requests=n,
        duration_s=time.monotonic() - t0,
        errors=errors,
        p50_ms=latencies[n // 2] * 1000 if n else 0.0,
        p99_ms=latencies[max(0, int(n * 0.99) - 1)] * 1000 if n else 0.0,
    )


def main() -> None:
    url, body, key, concurrency, seconds = sys.argv[1:6]
    result = asyncio.run(_python_load(url, body, key, int(concurrency), float(seconds)))
    print("RESULT " + json.dumps(dataclasses.asdict(result)))


if __name__ == "__main__":
    main()
