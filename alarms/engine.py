"""One alarm run: evaluate every budget over the marts, claim new alarms, send, resolve.

Kinds, each claimed once per (budget, period, kind): `threshold:<percent>` for every threshold
crossed (a higher one escalates), `forecast` when the run rate projects past the budget,
`anomaly:<agent>:<day>` when an agent in scope spends far above its own baseline, and
`resolved` for an earlier period that alarmed, sent once the next period has started.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from alarms.message import Message, Severity, dashboard_link, top_line, usd
from alarms.notifier import Notifier, build_notifier, deliver
from alarms.rules import FORECAST_METHOD, RANGE_DAYS, Period, anomaly, forecast, period_of
from alarms.spend import ScopeSpend, scope_label, scope_spend
from alarms.state import AlarmState, state_file
from meterline.config import BudgetConfig, MeterlineConfig
from meterline.layout import DataLayout

Pending = tuple[int, str, Message]
"""(alarm id, channel name, message) to deliver."""


@dataclass
class RunReport:
    claimed: list[str] = field(default_factory=list)
    """`budget/period/kind` of every alarm this run claimed."""
    sent: int = 0
    failed: int = 0


class AlarmEngine:
    def __init__(
        self,
        config: MeterlineConfig,
        layout: DataLayout,
        notifiers: Mapping[str, Notifier] | None = None,
        backoff_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config
        self._layout = layout
        self._notifiers = dict(notifiers) if notifiers is not None else {}
        self._backoff = backoff_seconds
        self._sleep = sleep

    def run(self, now: dt.datetime | None = None) -> RunReport:
        now = now or dt.datetime.now(dt.UTC)
        report = RunReport()
        state = AlarmState(state_file(self._layout))
        try:
            pending = state.claim_retries()
            for budget in self._config.budgets:
                pending += self._evaluate(state, budget, now, report)
            self._send(state, pending, report)
        finally:
            state.close()
        return report

    def _evaluate(self, state: AlarmState, budget: BudgetConfig, now: dt.datetime, report: RunReport) -> list[Pending]:
        alerts = self._config.alerts
        period = period_of(now, budget.period, self._config.timezone)
        scope = scope_label(_scope(budget))
        candidates: list[tuple[str, str, Message]] = []
        for old in state.unresolved_periods(budget.name, period.key):
            lines = [f"Budget: {budget.name} ({scope})", f"Period {old} is over; {period.key} has started."]
            title = f"Resolved: budget {budget.name}, {old}"
            candidates.append(
                (
                    old,
                    "resolved",
                    Message(title, lines, "resolved", dashboard_link(alerts.dashboard_url, scope, old, budget.name)),
                )
            )
        today = now.astimezone(period.start.tzinfo).date()
        since = min(period.first_day, today - dt.timedelta(days=max(alerts.anomaly_window_days, RANGE_DAYS)))
        spend = scope_spend(self._layout, _scope(budget), period.first_day, today, since)
        facts = _facts(budget, scope, period, now, today, spend)
        link = dashboard_link(alerts.dashboard_url, scope, period.key, budget.name)
        crossed = [t for t in sorted(budget.thresholds) if facts.percent >= t]
        for threshold in crossed:
            lower = [t for t in crossed if t < threshold]
            note = f" (escalated from {lower[-1]:g}%)" if lower else ""
            severity: Severity = "critical" if threshold >= 100 else "warning"
            title = f"Budget {budget.name}: {threshold:g}% of {usd(budget.amount_usd)} crossed{note}"
            kind = f"threshold:{threshold:g}"
            candidates.append((period.key, kind, _message(title, severity, link, facts, kind)))
        if facts.forecast_usd > budget.amount_usd > facts.spent_usd:
            title = f"Budget {budget.name}: projected {usd(facts.forecast_usd)} of {usd(budget.amount_usd)}"
            candidates.append((period.key, "forecast", _message(title, "warning", link, facts, "forecast")))
        for agent, series in sorted(spend.by_agent_daily.items()):
            trailing = [series.get(today - dt.timedelta(days=k), 0.0) for k in range(1, alerts.anomaly_window_days + 1)]
            found = anomaly(series.get(today, 0.0), trailing, alerts.anomaly_sigmas, alerts.anomaly_min_usd)
            if found is None:
                continue
            kind = f"anomaly:{agent}:{today.isoformat()}"
            title = f"Anomaly: {agent} spent {usd(found.today)} today (budget {budget.name})"
            extra = found.describe(alerts.anomaly_sigmas, alerts.anomaly_window_days)
            candidates.append((period.key, kind, _message(title, "warning", link, facts, kind, extra)))
        pending: list[Pending] = []
        for period_key, kind, message in candidates:
            alarm_id = state.claim(budget.name, period_key, kind, message, list(budget.channels))
            if alarm_id is not None:
                report.claimed.append(f"{budget.name}/{period_key}/{kind}")
                pending += [(alarm_id, channel, message) for channel in budget.channels]
        return pending

    def _send(self, state: AlarmState, pending: list[Pending], report: RunReport) -> None:
        """One worker per channel, messages in claim order: a channel that is down (or slow
        through its retries) never holds up the others."""
        by_channel: dict[str, list[Pending]] = defaultdict(list)
        for item in pending:
            by_channel[item[1]].append(item)
        if not by_channel:
            return
        with ThreadPoolExecutor(max_workers=len(by_channel)) as pool:
            results = list(pool.map(self._send_channel, by_channel.items()))
        for outcomes in results:
            for alarm_id, channel, error, attempts in outcomes:
                state.record(alarm_id, channel, error, attempts)
                report.sent += error is None
                report.failed += error is not None

    def _send_channel(self, item: tuple[str, list[Pending]]) -> list[tuple[int, str, str | None, int]]:
        channel, messages = item
        notifier = self._notifier(channel)
        if notifier is None:
            return [
                (alarm_id, channel, f"no channel {channel!r} under alerts.channels", 0) for alarm_id, _, _ in messages
            ]
        attempts = self._config.alerts.delivery_attempts
        outcomes = []
        for alarm_id, _, message in messages:
            error, tries = deliver(notifier, message, attempts, self._backoff, self._sleep)
            outcomes.append((alarm_id, channel, error, tries))
        return outcomes

    def _notifier(self, channel: str) -> Notifier | None:
        if channel not in self._notifiers:
            configured = self._config.alerts.channels.get(channel)
            if configured is None:
                return None
            self._notifiers[channel] = build_notifier(channel, configured)
        return self._notifiers[channel]


def _scope(budget: BudgetConfig) -> dict[str, str]:
    return {str(key): value for key, value in budget.scope.items()}


@dataclass(frozen=True)
class Facts:
    """The numbers every message of one budget run carries (also sent as `fields`)."""

    budget: str
    scope: str
    period: str
    spent_usd: float
    amount_usd: float
    percent: float
    forecast_usd: float
    forecast_low_usd: float
    forecast_high_usd: float
    top_agents: list[tuple[str, float]]
    top_models: list[tuple[str, float]]


def _facts(
    budget: BudgetConfig, scope: str, period: Period, now: dt.datetime, today: dt.date, spend: ScopeSpend
) -> Facts:
    recent = [spend.daily.get(today - dt.timedelta(days=k), 0.0) for k in range(1, RANGE_DAYS + 1)]
    outlook = forecast(spend.spent, period, now, recent)
    return Facts(
        budget=budget.name,
        scope=scope,
        period=period.key,
        spent_usd=spend.spent,
        amount_usd=budget.amount_usd,
        percent=100 * spend.spent / budget.amount_usd,
        forecast_usd=outlook.projected,
        forecast_low_usd=outlook.low,
        forecast_high_usd=outlook.high,
        top_agents=spend.top_agents,
        top_models=spend.top_models,
    )


def _message(title: str, severity: Severity, link: str | None, f: Facts, kind: str, extra: str = "") -> Message:
    lines = [
        f"Budget: {f.budget} ({f.scope}, {f.period})",
        f"Spent: {usd(f.spent_usd)} of {usd(f.amount_usd)} ({f.percent:.1f}%)",
        f"Forecast: {usd(f.forecast_usd)} by the end of the period, range {usd(f.forecast_low_usd)}"
        f" to {usd(f.forecast_high_usd)} ({FORECAST_METHOD})",
        top_line("agents", f.top_agents),
        top_line("models", f.top_models),
    ]
    if extra:
        lines.insert(2, extra)
    return Message(title, lines, severity, link, {**dataclasses.asdict(f), "kind": kind})


def run_alarms(config: MeterlineConfig, layout: DataLayout, now: dt.datetime | None = None) -> RunReport:
    """Evaluate every budget once with the configured channels (what `analytics serve` calls)."""
    return AlarmEngine(config, layout).run(now)
