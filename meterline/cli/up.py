"""`meterline up`: collector, gateway, analytics loop and dashboard as one supervised unit.

All four start at once (none needs another to start: the gateway spools its usage records
until the collector answers), so startup costs the slowest child, not the sum. Children run in
their own sessions so Ctrl-C reaches only the supervisor, which then stops them in data-flow
order: the gateway first (it flushes its telemetry to the collector), then the collector
(everything acknowledged is already in Parquet), then analytics (one last run over the complete
ledger), then the dashboard.

Each child's stderr is relayed through the supervisor (`ChildLog`), so the last line `up`
prints is what matters: why a child failed (its own error, not only its exit code), or on a
clean stop a one-line summary of what was flushed, read from the children's exit logs and the
ledger on disk.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import httpx

from meterline.cli.child_log import ChildLog
from meterline.cli.commands import data_dir_of
from meterline.cli.signals import set_on_sigterm
from meterline.config import MeterlineConfig
from meterline.defaults import DEMO_KEYS
from meterline.layout import DataLayout


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: ChildLog

    def failure(self, what: str) -> str:
        """`what`, then the child's own last error: the line a user needs, last."""
        cause = self.log.cause()
        return f"{self.name} {what}: {cause}" if cause else f"{self.name} {what}"


class StartupFailed(Exception):
    def __init__(self, child: Child, what: str) -> None:
        super().__init__(what)
        self.child = child
        self.what = what


_GATEWAY_STOPPED = re.compile(r"gateway stopped: (\d+) telemetry items undelivered")
_ANALYTICS_DONE = re.compile(r"analytics run done: (.+)$")


class Supervisor:
    def __init__(self, args: argparse.Namespace, config: MeterlineConfig, layout: DataLayout) -> None:
        self.args = args
        self.config = config
        self.layout = layout
        self.children: list[Child] = []
        self.stop = threading.Event()

    def _base(self) -> list[str]:
        base = [sys.executable, "-m", "meterline", "--data-dir", self._data_dir()]
        if self.args.config is not None:
            base += ["--config", str(self.args.config)]
        return base

    def _data_dir(self) -> str:
        """What the children get as --data-dir: an S3 ledger's URL as it is (each child keeps its
        local state under `storage.local_dir`), else the resolved local data dir."""
        data_dir = data_dir_of(self.args, self.config)
        return data_dir if data_dir.startswith("s3://") else str(self.layout.root)

    def _spawn(self, name: str, verb: list[str], env: dict[str, str]) -> Child:
        process = subprocess.Popen([*self._base(), *verb], env=env, start_new_session=True, stderr=subprocess.PIPE)
        assert process.stderr is not None
        child = Child(name, process, ChildLog(name, process.stderr, sys.stderr.buffer))
        self.children.append(child)
        return child

    def _wait_ready(self, probes: list[tuple[Child, str, float]]) -> None:
        """Until every (child, health URL, timeout) answers 200; any child exiting first, or a
        probe's timeout passing, fails the startup."""
        started = time.monotonic()
        waiting = list(probes)
        while waiting:
            for child in self.children:
                if child.process.poll() is not None:
                    raise StartupFailed(child, f"exited with code {child.process.returncode} during startup")
            for probe in list(waiting):
                child, url, timeout_s = probe
                try:
                    if httpx.get(url, timeout=1.0, verify=self._verify()).status_code == 200:
                        waiting.remove(probe)
                        continue
                except httpx.HTTPError:
                    pass
                if time.monotonic() - started > timeout_s:
                    raise StartupFailed(child, f"was not ready at {url} after {timeout_s:.0f} s")
            if waiting:
                time.sleep(0.1)

    def _verify(self) -> ssl.SSLContext | bool:
        """How health probes verify an https:// collector: the CA the gateway trusts."""
        ca_file = self.config.telemetry.collector_ca_file
        return ssl.create_default_context(cafile=ca_file) if ca_file else True

    def run(self) -> int:
        args = self.args
        self.layout.root.mkdir(parents=True, exist_ok=True)
        # With collector.tls the collector speaks https (its certificate must name the host).
        scheme = "https" if self.config.collector.tls is not None else "http"
        collector_url = f"{scheme}://{args.host}:{args.collector_port}"
        gateway_url = f"http://{args.host}:{args.gateway_port}"
        env = {**os.environ, "METERLINE_TELEMETRY__COLLECTOR": collector_url, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        previous = set_on_sigterm(self.stop)
        # Counted beside the children's start, not before it (reading Parquet footers imports pyarrow).
        ledger_before: list[int | None] = []
        counting = threading.Thread(target=lambda: ledger_before.append(self._ledger_rows()), daemon=True)
        counting.start()
        last_word: str | None = None
        try:
            collector = self._spawn(
                "collector",
                [
                    "collector",
                    *("--host", args.host, "--port", str(args.collector_port)),
                    *(() if args.collector_grpc_port is None else ("--grpc-port", str(args.collector_grpc_port))),
                ],
                env,
            )
            gateway = self._spawn("gateway", ["gateway", "--host", args.host, "--port", str(args.gateway_port)], env)
            self._spawn("analytics", ["analytics", "serve", "--interval", str(args.analytics_interval)], env)
            probes = [(collector, f"{collector_url}/health", 30.0), (gateway, f"{gateway_url}/health/readiness", 90.0)]
            if not args.no_dashboard:
                dashboard = self._spawn(
                    "dashboard", ["dashboard", "--host", args.host, "--port", str(args.dashboard_port)], env
                )
                probes.append((dashboard, f"http://{args.host}:{args.dashboard_port}/_stcore/health", 60.0))
            self._wait_ready(probes)
            self._banner(gateway_url, collector_url)
            if args.demo_traffic:
                from meterline.cli.demo_traffic import drive

                threading.Thread(
                    target=drive, args=(gateway_url, self._demo_keys(), self.stop), name="demo-traffic", daemon=True
                ).start()
            crashed = self._watch()
            code = 0
            if crashed is not None:
                last_word, code = crashed.failure(f"exited with code {crashed.process.returncode}"), 1
        except StartupFailed as exc:
            last_word, code = exc.child.failure(exc.what), 1
            print(f"meterline up: {exc.child.name} {exc.what}; stopping the others", file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            code = 0
        finally:
            self.stop.set()
            reports = self._shutdown()
            signal.signal(signal.SIGTERM, previous)
        if last_word is not None:
            print(f"meterline up: {last_word}", file=sys.stderr, flush=True)
        else:
            counting.join()
            print(
                f"meterline up: stopped; {self._summary(reports, ledger_before[0] if ledger_before else None)}",
                flush=True,
            )
        return code

    def _ledger_rows(self) -> int | None:
        """Usage records in a local ledger (Parquet footers only); None for an S3 ledger."""
        if data_dir_of(self.args, self.config).startswith("s3://"):
            return None
        import pyarrow.parquet as pq

        rows = 0
        for path in self.layout.usage_dir.glob("date=*/*.parquet"):
            try:
                rows += pq.ParquetFile(path).metadata.num_rows
            except (OSError, ValueError):  # removed by compaction between glob and open
                continue
        return rows

    def _summary(self, reports: dict[str, Child], ledger_before: int | None) -> str:
        """What was flushed, from what the children reported on exit and the ledger on disk;
        a child that reported nothing says so rather than a number."""
        parts: list[str] = []
        gateway = reports.get("gateway")
        if gateway is not None:
            found = gateway.log.last(_GATEWAY_STOPPED)
            if found is None:
                parts.append(f"gateway gave no exit report (code {gateway.process.returncode})")
            elif found.group(1) == "0":
                parts.append("gateway delivered every usage record")
            else:
                parts.append(f"gateway left {found.group(1)} telemetry items in its spool for the next start")
        ledger_after = self._ledger_rows()
        if "collector" in reports and ledger_before is not None and ledger_after is not None:
            parts.append(
                f"collector wrote {ledger_after - ledger_before} usage records to the ledger ({ledger_after} in all)"
            )
        analytics = reports.get("analytics")
        if analytics is not None:
            done = analytics.log.last(_ANALYTICS_DONE)
            parts.append(f"analytics' last run: {done.group(1)}" if done else "analytics reported no finished run")
        return "; ".join(parts) or "nothing was running"

    def _demo_keys(self) -> dict[str, str]:
        """The embedded defaults' public keys, for the agents that really hold them and may call
        the `demo` model: an agent of a real config that is merely named `support-bot` has its
        own key, which is never printed (and is not this one)."""
        if "demo" not in self.config.model_groups():
            return {}
        return {
            agent.id: DEMO_KEYS[agent.id]
            for agent in self.config.agents
            if agent.id in DEMO_KEYS
            and agent.key == DEMO_KEYS[agent.id]
            and (agent.models is None or "demo" in agent.models)
        }

    def _banner(self, gateway_url: str, collector_url: str) -> None:
        lines = [
            "",
            "Meterline is up.",
            f"  gateway    {gateway_url}/v1   (OpenAI-compatible)",
            f"  collector  {collector_url}   (OTLP/HTTP)",
        ]
        if self.args.collector_grpc_port != 0:
            lines.append(f"  collector  {self.args.host}:{self.args.collector_grpc_port or 4317}   (OTLP/gRPC)")
        if not self.args.no_dashboard:
            lines.append(f"  dashboard  http://{self.args.host}:{self.args.dashboard_port}")
        lines.append(f"  data       {self._data_dir()}")
        keys = self._demo_keys()
        if keys:
            lines.append("  demo agent keys (embedded defaults, model 'demo'):")
            lines += [f"    {agent:<16} {key}" for agent, key in keys.items()]
        lines += ["Press Ctrl-C to stop; buffered records are flushed first.", ""]
        print("\n".join(lines), flush=True)

    def _watch(self) -> Child | None:
        """Until Ctrl-C or SIGTERM (None), or a child exits on its own (that child)."""
        while not self.stop.wait(0.5):
            for child in self.children:
                if child.process.poll() is not None:
                    return child
        return None

    def _shutdown(self) -> dict[str, Child]:
        """Stop the children in data-flow order; each one's log is complete when this returns."""
        order = {"gateway": 0, "collector": 1, "analytics": 2, "dashboard": 3}
        stopped: dict[str, Child] = {}
        for child in sorted(self.children, key=lambda c: order.get(c.name, 9)):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    print(f"meterline up: {child.name} did not stop in 20 s; killing it", file=sys.stderr)
                    child.process.kill()
                    child.process.wait()
            child.log.join()
            stopped[child.name] = child
        self.children.clear()
        return stopped
