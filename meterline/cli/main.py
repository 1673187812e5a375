"""`meterline`: one program, one verb per job, `--help` on every verb.

Shared options (`--config`, `--data-dir`) go before or after the verb. Each verb's work lives
in its stage's package; this module only parses arguments and reports errors.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.keys.policy import KeyPolicyError
from meterline.cli import alarms as alarms_cli
from meterline.cli import commands, config_source
from meterline.cli import quarantine as quarantine_cli
from meterline.cli import quotas as quotas_cli
from meterline.cli import secrets as secrets_cli
from meterline.cli import traces as traces_cli
from meterline.config import ConfigError
from meterline.secret_refs import SecretResolutionError


def _shared(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        help="config file, or env:NAME for the text of an environment variable "
        "(default: ./meterline.yaml, else the embedded defaults)",
    )
    parser.add_argument(
        "--data-dir",
        default=default,
        help="where data lands (default: storage.data_dir from the config, ./data)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="log INFO lines on stderr (servers always do; other verbs log warnings only)",
    )


def _server(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=port, help=f"port to bind (default: {port})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meterline", description="LLM gateway and cost-attribution pipeline.")
    _shared(parser, top=True)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    up = verbs.add_parser("up", help="run gateway, collector, analytics and dashboard together")
    _shared(up, top=False)
    up.add_argument("--host", default="127.0.0.1", help="address every service binds (default: 127.0.0.1)")
    up.add_argument("--gateway-port", type=int, default=4000)
    up.add_argument("--collector-port", type=int, default=4318, help="collector OTLP/HTTP port (default: 4318)")
    up.add_argument(
        "--collector-grpc-port",
        type=int,
        default=None,
        help="collector OTLP/gRPC port; 0: none (default: 4317 when free)",
    )
    up.add_argument("--dashboard-port", type=int, default=8501)
    up.add_argument("--no-dashboard", action="store_true", help="do not start the Streamlit dashboard")
    up.add_argument("--analytics-interval", type=float, default=5.0, help="seconds between mart runs (default: 5)")
    up.add_argument("--demo-traffic", action="store_true", help="drive synthetic agents through the gateway")
    up.set_defaults(run=commands.up)

    gateway = verbs.add_parser("gateway", help="run the OpenAI-compatible gateway")
    _shared(gateway, top=False)
    _server(gateway, 4000)
    gateway.set_defaults(run=commands.gateway)

    collector = verbs.add_parser("collector", help="run the OTLP collector that writes the ledger")
    _shared(collector, top=False)
    _server(collector, 4318)
    collector.add_argument(
        "--grpc-port",
        type=int,
        default=None,
        help="OTLP/gRPC port, 0 for none (default: 4317; when it is taken, HTTP only, with a warning)",
    )
    collector.set_defaults(run=commands.collector)
    collector_actions = collector.add_subparsers(dest="collector_verb", metavar="ACTION")
    compact = collector_actions.add_parser(
        "compact", help="merge small Parquet files and remove expired partitions once (collector stopped)"
    )
    _shared(compact, top=False)
    compact.set_defaults(run=commands.collector_compact)

    analytics = verbs.add_parser("analytics", help="build the spend marts")
    analytics_verbs = analytics.add_subparsers(dest="analytics_verb", required=True, metavar="ACTION")
    run = analytics_verbs.add_parser("run", help="build every mart once, then run the budget alarms once")
    _shared(run, top=False)
    run.add_argument("--no-alarms", action="store_true", help="build the marts only")
    run.set_defaults(run=commands.analytics_run)
    serve = analytics_verbs.add_parser("serve", help="refresh the marts, then run the budget alarms, every interval")
    _shared(serve, top=False)
    serve.add_argument("--interval", type=float, default=None, help="seconds (default: analytics.interval_seconds)")
    serve.set_defaults(run=commands.analytics_serve)

    dashboard = verbs.add_parser("dashboard", help="run the Streamlit finance dashboard")
    _shared(dashboard, top=False)
    _server(dashboard, 8501)
    dashboard.set_defaults(run=commands.dashboard)

    spend = verbs.add_parser("spend", help="print spend by agent, team or model")
    _shared(spend, top=False)
    spend.add_argument("--by", choices=["agent", "team", "project", "model"], default="agent")
    spend.add_argument("--since", default="7d", help="7d, 24h or a date YYYY-MM-DD (default: 7d)")
    spend.add_argument("--until", default=None, help="last date included, YYYY-MM-DD (default: today)")
    spend.add_argument("--format", choices=["table", "json", "csv"], default="table")
    spend.add_argument("--top", type=int, default=None, metavar="N", help="the N biggest spenders, the rest as one row")
    spend.set_defaults(run=commands.spend)
    _keys_parser(verbs)
    secrets_cli.add_parser(verbs, _shared)
    alarms_cli.add_parser(verbs, _shared)
    quarantine_cli.add_parser(verbs, _shared)
    quotas_cli.add_parser(verbs, _shared)
    traces_cli.add_parsers(verbs, _shared)
    return parser


def _keys(action: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from meterline.cli import keys  # the key store's clients load only for this verb

        code: int = getattr(keys, action)(args)
        return code

    return run


def _keys_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = verbs.add_parser("keys", help="agent keys: create, list, revoke, rotate; apply the config's agents")
    actions = keys.add_subparsers(dest="keys_verb", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="mint a key for an agent (printed once)")
    create.add_argument("--agent", required=True, help="agent id")
    create.add_argument("--alias", default=None, help="a name for the key (default: <agent>-<time>)")
    create.add_argument("--expires-in", default=None, help="lifetime, e.g. 30d, 12h (default: never)")
    list_ = actions.add_parser("list", help="list keys (never the keys themselves)")
    list_.add_argument("--agent", default=None, help="only this agent's keys")
    revoke = actions.add_parser("revoke", help="revoke a key now (gateways refuse it within refresh_seconds)")
    revoke.add_argument("key_id")
    rotate = actions.add_parser("rotate", help="replace a key; the old one works for a grace period")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace", default=None, help="how long the old key keeps working (default: 1h)")
    apply = actions.add_parser("apply", help="make the key store match the config's agents (plan, then apply)")
    apply.add_argument("--dry-run", action="store_true", help="print the plan only")
    apply.add_argument(
        "--write-keys-to",
        default=None,
        metavar="aws-secretsmanager://PREFIX",
        help="store each new key in AWS Secrets Manager at PREFIX/<agent id> instead of printing it",
    )
    for parser, action in ((create, "create"), (list_, "list_keys"), (revoke, "revoke"), (rotate, "rotate"),
                           (apply, "apply_config")):  # fmt: skip
        _shared(parser, top=False)
        parser.set_defaults(run=_keys(action))


_READING_VERBS = {
    ("spend", None), ("traces", None), ("trace", None), ("sql", None), ("quarantine", None),
    ("analytics", "run"), ("alarms", "status"), ("alarms", "run"), ("keys", "list"), ("quotas", "rebuild"),
}  # fmt: skip
"""Verbs that only read the data dir (see `commands.READS_DATA`)."""
_SERVER_VERBS = {"up", "gateway", "collector", "analytics", "dashboard"}
"""Verbs whose INFO logs are their output; every other verb logs warnings only, unless `-v`."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    action = getattr(args, f"{args.verb}_verb", None)
    setattr(args, commands.READS_DATA, (args.verb, action) in _READING_VERBS)
    quiet = args.verb not in _SERVER_VERBS and not args.verbose
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health probe otherwise
    try:
        config_source.materialize(args)
        code: int = args.run(args)
    except (ConfigError, SecretResolutionError, KeyPolicyError, commands.UsageError) as exc:
        print(f"meterline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
