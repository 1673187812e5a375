"""Servers under test as pinned processes: start, wait for readiness, read CPU and RSS from /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tree(pid: int) -> list[int]:
    """The process and its live descendants (a proxy may run its server in a child)."""
    pids, index = [pid], 0
    while index < len(pids):
        for task in Path(f"/proc/{pids[index]}/task").glob("*/children"):
            try:
                pids.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
        index += 1
    return pids


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process tree, in seconds."""
    total = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def rss_mib(pid: int) -> float:
    total = 0
    for member in _tree(pid):
        try:
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1])
        except OSError:
            continue
    return total * _PAGE / 2**20


def core_busy_seconds(core: int) -> float:
    """Non-idle time of one CPU core from /proc/stat, in seconds (every process on it)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(v) for v in line.split()[1:]]
            return (sum(ticks) - ticks[3] - ticks[4]) / _TICK  # minus idle and iowait
    return 0.0


@dataclass
class Server:
    """One server process pinned to `cpus`, started by `start`."""

    name: str
    command: list[str]
    ready_url: str
    cpus: str
    env: dict[str, str]
    cwd: str
    log: Path
    ready_headers: dict[str, str] = field(default_factory=dict)
    ready_any_status: bool = False
    """Ready at any HTTP answer (a server with no GET route), not only at 200."""
    process: subprocess.Popen[bytes] | None = None
    ready_s: float = 0.0
    peak_rss_mib: float = 0.0
    _sampling: threading.Event = field(default_factory=threading.Event)

    def start(self, timeout_s: float = 120.0) -> None:
        """Starts the process and returns once `ready_url` answers 200; `ready_s` is the time that took."""
        with self.log.open("wb") as out:
            t0 = time.monotonic()
            self.process = subprocess.Popen(
                ["taskset", "-c", self.cpus, *self.command],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with httpx.Client(timeout=1.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
                try:
                    status = client.get(self.ready_url, headers=self.ready_headers).status_code
                    if status == 200 or self.ready_any_status:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() - t0 > timeout_s:
                    raise TimeoutError(f"{self.name} not ready after {timeout_s} s; see {self.log}")
                time.sleep(0.02)
        self.ready_s = time.monotonic() - t0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_mib(self) -> float:
        return rss_mib(self.pid)

    def sample_rss(self, interval_s: float = 0.25) -> threading.Thread:
        """Samples RSS until `stop_sampling`, keeping the peak in `peak_rss_mib`."""
        self._sampling.clear()

        def run() -> None:
            while not self._sampling.wait(interval_s):
                self.peak_rss_mib = max(self.peak_rss_mib, self.rss_mib())

        thread = threading.Thread(target=run, name=f"rss-{self.name}", daemon=True)
        thread.start()
        return thread

    def stop_sampling(self, thread: threading.Thread) -> None:
        self._sampling.set()
        thread.join()
        self.peak_rss_mib = max(self.peak_rss_mib, self.rss_mib())

    def stop(self) -> None:
        """SIGTERM to the process group this server started, SIGKILL after 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
