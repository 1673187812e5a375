"""The generic JSON webhook against a local receiver: payload shape, signature, retry on 5xx,
and a channel that is down never holding up the others."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket

import pytest

from alarms.engine import AlarmEngine
from alarms.message import Message
from alarms.notifier import deliver
from alarms.state import AlarmState, state_file
from alarms.webhook import Webhook
from meterline.config import MeterlineConfig
from meterline.layout import DataLayout
from tests.alarms.receivers import Receiver, serve
from tests.alarms.test_engine import LATE_NOV, steady_november

MESSAGE = Message(
    "Budget support-monthly: 80% of US$100.00 crossed",
    ["Budget: support-monthly (team:support, 2026-11)", "Spent: US$82.50 of US$100.00 (82.5%)"],
    "warning",
    "https://meterline.example.com/?scope=team%3Asupport&period=2026-11",
    {"spent_usd": 82.5, "percent": 82.5, "top_agents": [["support-bot", 60.0]]},
)


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens there once the probe is closed


def test_the_payload_is_the_message_as_json_signed_with_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "hook-secret")
    with serve(Receiver("webhook")) as hook:
        error, tries = deliver(Webhook("ops", hook.url, "os.environ/HOOK_SECRET"), MESSAGE, attempts=1)

    assert (error, tries) == (None, 1)
    assert hook.received == [
        {
            "title": "Budget support-monthly: 80% of US$100.00 crossed",
            "severity": "warning",
            "text": "Budget: support-monthly (team:support, 2026-11)\nSpent: US$82.50 of US$100.00 (82.5%)",
            "link": "https://meterline.example.com/?scope=team%3Asupport&period=2026-11",
            "fields": {"spent_usd": 82.5, "percent": 82.5, "top_agents": [["support-bot", 60.0]]},
        }
    ]
    headers = hook.headers[0]
    assert headers["content-type"] == "application/json"
    mac = hmac.new(b"hook-secret", hook.raw[0], hashlib.sha256).hexdigest()
    assert headers["x-meterline-signature"] == f"sha256={mac}"
    assert b"hook-secret" not in hook.raw[0]


def test_without_a_secret_there_is_no_signature() -> None:
    with serve(Receiver("webhook")) as hook:
        deliver(Webhook("ops", hook.url, None), MESSAGE, attempts=1)

    assert "x-meterline-signature" not in hook.headers[0]
    assert json.loads(hook.raw[0])["title"] == MESSAGE.title


def test_a_5xx_is_retried_with_backoff_until_accepted() -> None:
    waits: list[float] = []
    with serve(Receiver("webhook", fail_first=2)) as hook:
        error, tries = deliver(Webhook("ops", hook.url, None), MESSAGE, 3, 0.25, waits.append)

    assert (error, tries) == (None, 3)
    assert hook.hits == 3 and len(hook.received) == 1
    assert waits == [0.25, 0.5]


def test_a_4xx_is_not_retried() -> None:
    class Refusing(Receiver):
        def answer(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
            self.hits += 1
            return 404, b"no such hook"

    with serve(Refusing("webhook")) as hook:
        error, tries = deliver(Webhook("ops", hook.url, None), MESSAGE, 3, 0, lambda _: None)

    assert (error, tries) == ("HTTP 404", 1)
    assert hook.hits == 1


def test_a_channel_that_is_down_does_not_block_the_others(layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(Receiver("webhook")) as hook, serve(Receiver("slack")) as slack:
        config = MeterlineConfig.model_validate(
            {
                "timezone": "Asia/Shanghai",
                "budgets": [
                    {
                        "name": "support-monthly",
                        "scope": {"team": "support"},
                        "period": "month",
                        "amount_usd": 100,
                        "channels": ["down-hook", "ops-hook", "finance-slack"],
                    }
                ],
                "alerts": {
                    "channels": {
                        "down-hook": {"type": "webhook", "webhook": closed_port_url()},
                        "ops-hook": {"type": "webhook", "webhook": hook.url},
                        "finance-slack": {"type": "slack", "webhook": slack.url},
                    }
                },
            }
        )
        steady_november(layout)
        waits: list[float] = []

        report = AlarmEngine(config, layout, backoff_seconds=0.5, sleep=waits.append).run(LATE_NOV)

    assert (report.sent, report.failed) == (4, 2)  # 50 % and 80 %: two messages per channel
    assert [m["title"][:40] for m in hook.received] == [
        "Budget support-monthly: 50% of US$100.00",
        "Budget support-monthly: 80% of US$100.00",
    ]
    assert len(slack.received) == 2
    assert waits == [0.5, 1.0, 0.5, 1.0]  # the down channel's own retries, 3 tries per message
    state = AlarmState(state_file(layout))
    failed = [(d.channel, d.attempts, d.last_error or "") for d in state.deliveries() if d.status == "failed"]
    state.close()
    assert [(channel, attempts) for channel, attempts, _ in failed] == [("down-hook", 3)] * 2
    assert all(error.startswith("ConnectError") for _, _, error in failed)
