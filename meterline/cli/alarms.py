"""`meterline alarms status|test|run`: what the budget alarms did, and a test message per channel."""

from __future__ import annotations

import argparse

from meterline.cli.commands import UsageError, load, load_marts


def status(args: argparse.Namespace) -> int:
    """Every alarm delivery, failures first, with the last error."""
    from alarms.state import AlarmState, state_file

    _config, layout, _ledger = load_marts(args)  # alarm state lives beside the marts
    if not state_file(layout).exists():
        print("no alarms yet")
        return 0
    state = AlarmState(state_file(layout))
    try:
        rows = sorted(state.deliveries(), key=lambda d: (d.status != "failed", d.alarm_id, d.channel))
    finally:
        state.close()
    for d in rows:
        error = f"  error: {d.last_error}" if d.last_error else ""
        print(
            f"{d.status:<7} {d.budget}/{d.period}/{d.kind} -> {d.channel} (tries {d.attempts}, {d.updated_at}){error}"
        )
    failed = sum(d.status == "failed" for d in rows)
    print(f"{len(rows)} deliveries, {failed} failed")
    return 1 if failed else 0


def test(args: argparse.Namespace) -> int:
    """Send a test message to one channel now (nothing is recorded)."""
    from alarms.message import Message
    from alarms.notifier import build_notifier, deliver

    config, _layout = load(args)
    channel = config.alerts.channels.get(args.channel)
    if channel is None:
        raise UsageError(_unknown_channel(args.channel, list(config.alerts.channels)))
    message = Message(
        f"Meterline test message ({args.channel})",
        ["This channel is set up: budget alarms will arrive here."],
        "info",
        config.alerts.dashboard_url,
    )
    error, tries = deliver(build_notifier(args.channel, channel), message, config.alerts.delivery_attempts)
    if error is not None:
        print(f"{args.channel}: failed after {tries} tries: {error}")
        return 1
    print(f"{args.channel}: sent")
    return 0


def _unknown_channel(name: str, configured: list[str]) -> str:
    if not configured:
        return (
            f"--channel {name!r}: no alert channels are configured; add one under alerts.channels in the "
            "config, e.g.\n  alerts:\n    channels:\n"
            f"      {name}: {{type: slack, webhook: os.environ/SLACK_WEBHOOK_URL}}"
        )
    return f"--channel {name!r}: not under alerts.channels; configured: {', '.join(configured)}"


def run(args: argparse.Namespace) -> int:
    """Evaluate every budget once over the current marts."""
    from alarms.engine import run_alarms

    config, layout, _ledger = load_marts(args)
    report = run_alarms(config, layout)
    print(f"{len(report.claimed)} new alarms; {report.sent} sent, {report.failed} failed")
    for alarm in report.claimed:
        print(f"  {alarm}")
    return 1 if report.failed else 0


def add_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser], shared: object) -> None:
    parser = verbs.add_parser("alarms", help="budget alarms: status, a test message, one run")
    actions = parser.add_subparsers(dest="alarms_verb", required=True, metavar="ACTION")
    status_ = actions.add_parser("status", help="every alarm delivery, failures first (exit 1 if any failed)")
    test_ = actions.add_parser("test", help="send a test message to one channel")
    test_.add_argument("--channel", required=True, help="a name under alerts.channels")
    run_ = actions.add_parser("run", help="evaluate every budget once over the current marts")
    for sub, action in ((status_, status), (test_, test), (run_, run)):
        shared(sub, top=False)  # type: ignore[operator]
        sub.set_defaults(run=action)
