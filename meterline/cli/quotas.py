"""`meterline quotas rebuild`: restore the day's and month's quota counters in Redis from the
ledger, after Redis lost them (the gateway's quota-store reset alarm says when)."""

from __future__ import annotations

import argparse
import time

from meterline.cli.commands import UsageError, load_marts


def rebuild(args: argparse.Namespace) -> int:
    """Raise every agent's and team's tokens/day, usd/day and usd/month counters to the ledger's totals."""
    import redis

    from gateway.quotas.rebuild import counters_from, current_windows, ledger_totals, raise_counters
    from meterline.secrets import resolve

    config, _layout, ledger = load_marts(args)
    settings = config.quota_store
    if not settings.redis_url:
        raise UsageError(
            "quota_store.redis_url is not set: in-process counters live inside the gateway and start "
            "from zero with it; there is nothing outside it to rebuild"
        )
    windows = current_windows(config.timezone, time.time())
    totals = ledger_totals(ledger, windows)
    counters = counters_from(totals, windows)
    client = redis.Redis.from_url(resolve(settings.redis_url), socket_timeout=10, socket_connect_timeout=10)
    try:
        restored = raise_counters(client, settings.key_prefix, counters, dry_run=args.dry_run)
    except (redis.RedisError, OSError) as exc:
        raise UsageError(f"quota store (quota_store.redis_url): {type(exc).__name__}: {exc}") from None
    finally:
        client.close()
    verb = "would raise" if args.dry_run else "raised"
    for counter in restored:
        mark = f"{verb} {counter.before} -> {counter.after}" if counter.ledger > counter.before else "kept"
        print(f"{counter.key}: ledger {counter.ledger}, store {counter.before}: {mark}")
    changed = sum(counter.ledger > counter.before for counter in restored)
    print(
        f"{len(restored)} counters from {ledger.describe()} for {windows.day.key[1:]} and {windows.month.key[1:]} "
        f"({config.timezone}): {changed} {verb}, {len(restored) - changed} already at or above the ledger"
    )
    return 0


def add_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser], shared: object) -> None:
    parser = verbs.add_parser("quotas", help="quota counters: rebuild them from the ledger")
    actions = parser.add_subparsers(dest="quotas_verb", required=True, metavar="ACTION")
    rebuild_ = actions.add_parser(
        "rebuild",
        help="restore today's and this month's counters in Redis from the ledger (after Redis lost them)",
        description=(
            "Recompute every agent's and team's tokens_per_day, usd_per_day and usd_per_month counters "
            "for the current day and month (in the config's timezone) from the usage ledger, and raise "
            "the counters in quota_store.redis_url to them. Counters are never lowered."
        ),
    )
    rebuild_.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    shared(rebuild_, top=False)  # type: ignore[operator]
    rebuild_.set_defaults(run=rebuild)
