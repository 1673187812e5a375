"""What each CLI verb does: load the config, then hand over to the stage that owns the work."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import threading
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING

from meterline.cli.signals import set_on_sigterm
from meterline.config import MeterlineConfig, load_config
from meterline.layout import DataLayout

if TYPE_CHECKING:
    from analytics.ledger_source import LedgerSource


class UsageError(Exception):
    """A command-line value that cannot be used."""


def data_dir_of(args: argparse.Namespace, config: MeterlineConfig) -> str:
    """Where the ledger lands: the `--data-dir` flag, else `storage.data_dir`; a path or `s3://bucket/prefix`."""
    return str(args.data_dir or config.storage.data_dir)


READS_DATA = "reads_data"
"""Set on a verb that only reads what is under the data dir (`spend`, `traces`, `keys list`...):
a local data dir that does not exist is then an error, never a zero report from a new, empty dir."""


def require_data_dir(args: argparse.Namespace, data_dir: str) -> None:
    """For a reading verb, a local data dir must exist: a mistyped `--data-dir` otherwise prints
    zeros and leaves an empty directory behind."""
    if not getattr(args, READS_DATA, False) or data_dir.startswith("s3://"):
        return
    root = DataLayout.at(data_dir).root
    if not root.is_dir():
        flag = "--data-dir" if args.data_dir else "storage.data_dir"
        raise UsageError(
            f"no data dir at {root} ({flag}): nothing was ever recorded there; "
            "pass the data dir that `meterline up` or the collector writes to"
        )


def load(args: argparse.Namespace) -> tuple[MeterlineConfig, DataLayout]:
    """The config and the local layout: the data dir itself, or `storage.local_dir` when the
    ledger is in S3 (key store, spool, WAL, marts and alarm state always live on local disk;
    `Path("s3://b/p")` would silently become the local directory `s3:/b/p`)."""
    config, _source = load_config(args.config)
    data_dir = data_dir_of(args, config)
    require_data_dir(args, data_dir)
    return config, DataLayout.at(config.storage.local_dir if data_dir.startswith("s3://") else data_dir)


def load_marts(args: argparse.Namespace) -> tuple[MeterlineConfig, DataLayout, LedgerSource]:
    """The config, where the marts (and alarm state) live, and the ledger they are built from:
    one local data dir, or an S3 ledger with the marts under `storage.local_dir`."""
    from analytics.ledger_source import open_ledger

    config, _source = load_config(args.config)
    require_data_dir(args, data_dir_of(args, config))
    try:
        layout, ledger = open_ledger(config.storage, args.data_dir)
    except ValueError as exc:
        raise UsageError(f"--data-dir / storage.data_dir: {exc}") from None
    return config, layout, ledger


def _refresh(config: MeterlineConfig, layout: DataLayout, ledger: LedgerSource) -> dict[str, int]:
    """One mart run; a ledger that cannot be read (a missing bucket, S3 unreachable, no
    permission) or a marts dir that cannot be written is reported in one line, no traceback."""
    from analytics.jobs import run_once
    from analytics.ledger_source import LedgerUnavailable

    try:
        return run_once(layout, config.timezone, progress=_progress, ledger=ledger)
    except LedgerUnavailable as exc:
        raise UsageError(f"cannot read the ledger at {ledger.describe()}: {exc}") from None
    except OSError as exc:  # S3 unreachable or refused, a full disk under the marts
        raise UsageError(f"mart run from {ledger.describe()} into {layout.marts_dir} failed: {exc}") from None


def gateway(args: argparse.Namespace) -> int:
    from gateway.server import serve

    config, layout = load(args)
    # The key store and its secrets live under the data dir (`meterline up` passes --data-dir).
    storage = config.storage.model_copy(update={"data_dir": str(layout.root)})
    serve(config.model_copy(update={"storage": storage}), host=args.host, port=args.port)
    return 0


def collector(args: argparse.Namespace) -> int:
    from collector.server import serve

    config, source = load_config(args.config)
    data_dir = args.data_dir or config.storage.data_dir  # a path or s3://bucket/prefix
    if args.grpc_port is None:
        serve(config, data_dir, host=args.host, port=args.port, grpc_port=4317, grpc_required=False, source=source)
    else:
        serve(config, data_dir, host=args.host, port=args.port, grpc_port=args.grpc_port, source=source)
    return 0


def collector_compact(args: argparse.Namespace) -> int:
    from collector.maintenance import compact_once
    from collector.settings import CollectorSettings
    from collector.wal import WalInUse

    config, _source = load_config(args.config)
    settings = CollectorSettings.from_config(config, args.data_dir)
    try:
        report = compact_once(settings)
    except WalInUse as exc:
        interval = settings.compaction.interval_s
        raise UsageError(f"{exc}; a running collector compacts every {interval:g} s by itself") from None
    print(
        f"compacted {report.files_merged} files ({report.rows_merged} rows) in {report.partitions_compacted} "
        f"partitions; removed {len(report.partitions_dropped)} expired partitions"
    )
    for partition in report.partitions_dropped:
        print(f"  removed {partition}")
    return 0


def analytics_run(args: argparse.Namespace) -> int:
    """One mart run, then the budget alarms over it, as `analytics serve` does each interval: a
    scheduled one-shot run (cron, an ECS scheduled task) alarms too. Exit 1 when an alarm could
    not be delivered (it is retried on the next run)."""
    config, layout, ledger = load_marts(args)
    for mart, rows in _refresh(config, layout, ledger).items():
        print(f"{mart}: {rows} rows -> {layout.mart_file(mart)}")
    if args.no_alarms or not config.budgets:
        return 0
    from alarms.engine import run_alarms

    report = run_alarms(config, layout)
    print(f"alarms: {len(report.claimed)} new; {report.sent} sent, {report.failed} failed")
    for alarm in report.claimed:
        print(f"  {alarm}")
    return 1 if report.failed else 0


def _progress(done: int, total: int) -> None:
    """Days rebuilt so far, on stderr (stdout stays the command's result); quiet for short runs."""
    if total > 4:
        print(f"marts: {done}/{total} days rebuilt", file=sys.stderr, flush=True)


def analytics_serve(args: argparse.Namespace) -> int:
    from analytics.jobs import serve_forever

    config, layout, ledger = load_marts(args)
    interval = args.interval if args.interval is not None else config.analytics.interval_seconds
    stop = threading.Event()
    set_on_sigterm(stop)
    try:
        serve_forever(layout, interval, stop, config.timezone, after=lambda: _alarms(config, layout), ledger=ledger)
    except KeyboardInterrupt:
        stop.set()
    return 0


def _alarms(config: MeterlineConfig, layout: DataLayout) -> None:
    from alarms.engine import run_alarms

    if config.budgets:
        run_alarms(config, layout)


def dashboard(args: argparse.Namespace) -> int:
    from dashboards.access import OIDC_ENV, PASSWORD_REF_ENV, SECRETS_ENV
    from dashboards.filters import (
        BUDGETS_ENV,
        LEDGER_URL_ENV,
        S3_ENDPOINT_ENV,
        S3_REGION_ENV,
        TIMEZONE_ENV,
        budgets_env_value,
    )
    from meterline.bind import require_loopback_or_allowed

    config, layout, _ledger = load_marts(args)  # the pages read the marts and the local ledger
    settings = config.dashboard
    if settings.password is None and not settings.oidc:
        require_loopback_or_allowed(
            args.host,
            server="dashboard",
            risk="may read every agent's spend",
            remedy="set dashboard.password (a secret reference) or dashboard.oidc",
            setting="dashboard.allow_unauthenticated",
            allowed=settings.allow_unauthenticated,
            source=str(args.config or "meterline.yaml"),
        )
    app = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", args.host,
        "--server.port", str(args.port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        # A viewer's chrome: no Deploy button, no developer menu, no tracebacks, no e-mail prompt,
        # no re-run on a source change.
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
        "--client.showErrorDetails", "none",
        "--server.showEmailPrompt", "false",
        "--server.runOnSave", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    env = {
        **os.environ,
        "METERLINE_DATA_DIR": str(layout.root),
        TIMEZONE_ENV: config.timezone,
        # Budgets without their channels: the page never holds a webhook or a secret reference.
        BUDGETS_ENV: budgets_env_value([b.model_dump() for b in config.budgets]),
        # The login: the password's reference (resolved by the page), never its value.
        SECRETS_ENV: config.secrets.model_dump_json(),
    }
    env.pop(PASSWORD_REF_ENV, None)
    env.pop(OIDC_ENV, None)
    for inherited in (LEDGER_URL_ENV, S3_ENDPOINT_ENV, S3_REGION_ENV):
        env.pop(inherited, None)
    ledger_url = data_dir_of(args, config)
    if ledger_url.startswith("s3://"):  # the Traces page reads an S3 ledger through its own target
        env[LEDGER_URL_ENV] = ledger_url
        if config.storage.s3_endpoint_url:
            env[S3_ENDPOINT_ENV] = config.storage.s3_endpoint_url
        if config.storage.s3_region:
            env[S3_REGION_ENV] = config.storage.s3_region
    if settings.password is not None:
        env[PASSWORD_REF_ENV] = settings.password
    if settings.oidc:
        env[OIDC_ENV] = "1"
    # exec, not a child process: SIGTERM from `meterline up` must reach Streamlit itself, or
    # stopping this wrapper would orphan the server.
    os.execve(sys.executable, command, env)


def spend(args: argparse.Namespace) -> int:
    from analytics.spend_report import parse_since, render, spend_report

    config, layout, ledger = load_marts(args)
    today = dt.datetime.now(zoneinfo.ZoneInfo(config.timezone)).date()
    try:
        since = parse_since(args.since, today)
        until = dt.date.fromisoformat(args.until) if args.until else None
    except ValueError as exc:
        raise UsageError(f"--since/--until: {exc}") from None
    if args.top is not None and args.top < 1:
        raise UsageError("--top: expected a positive number")
    _refresh(config, layout, ledger)  # only days whose ledger changed are rebuilt
    report = spend_report(layout, args.by, since, until, top=args.top)
    print(render(report, args.format, since=since, until=until))
    return 0


def up(args: argparse.Namespace) -> int:
    from meterline.cli.up import Supervisor

    config, layout = load(args)
    return Supervisor(args, config, layout).run()
