"""`meterline up`: collector, gateway, analytics loop and dashboard as one supervised unit.

Children run in their own sessions so Ctrl-C reaches only the supervisor, which then stops
them in data-flow order: the gateway first (it flushes its telemetry to the collector), then
the collector (everything acknowledged is already in Parquet), then analytics (one last run
over the complete ledger), then the dashboard.
"""

from __future__ import annotations

import argparse
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import httpx

from meterline.cli.commands import data_dir_of
from meterline.cli.signals import set_on_sigterm
from meterline.config import MeterlineConfig
from meterline.defaults import DEMO_KEYS
from meterline.layout import DataLayout


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


class StartupFailed(Exception):
    pass


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
        process = subprocess.Popen([*self._base(), *verb], env=env, start_new_session=True)
        child = Child(name, process)
        self.children.append(child)
        return child

    def _wait_ready(self, child: Child, url: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise StartupFailed(f"{child.name} exited with code {child.process.returncode} during startup")
            try:
                if httpx.get(url, timeout=1.0, verify=self._verify()).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise StartupFailed(f"{child.name} was not ready at {url} after {timeout_s:.0f} s")

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
            self._wait_ready(collector, f"{collector_url}/health", 30)
            gateway = self._spawn("gateway", ["gateway", "--host", args.host, "--port", str(args.gateway_port)], env)
            self._wait_ready(gateway, f"{gateway_url}/health/readiness", 90)
            self._spawn("analytics", ["analytics", "serve", "--interval", str(args.analytics_interval)], env)
            if not args.no_dashboard:
                dashboard = self._spawn(
                    "dashboard", ["dashboard", "--host", args.host, "--port", str(args.dashboard_port)], env
                )
                self._wait_ready(dashboard, f"http://{args.host}:{args.dashboard_port}/_stcore/health", 60)
            self._banner(gateway_url, collector_url)
            if args.demo_traffic:
                from meterline.cli.demo_traffic import drive

                threading.Thread(
                    target=drive, args=(gateway_url, self._demo_keys(), self.stop), name="demo-traffic", daemon=True
                ).start()
            return self._watch()
        except StartupFailed as exc:
            print(f"meterline up: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            self.stop.set()
            self._shutdown()
            signal.signal(signal.SIGTERM, previous)

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

    def _watch(self) -> int:
        while not self.stop.wait(0.5):
            for child in self.children:
                if child.process.poll() is not None:
                    print(f"meterline up: {child.name} exited with code {child.process.returncode}", file=sys.stderr)
                    return 1
        return 0

    def _shutdown(self) -> None:
        order = {"gateway": 0, "collector": 1, "analytics": 2, "dashboard": 3}
        for child in sorted(self.children, key=lambda c: order.get(c.name, 9)):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    print(f"meterline up: {child.name} did not stop in 20 s; killing it", file=sys.stderr)
                    child.process.kill()
                    child.process.wait()
        self.children.clear()
