"""A Redis restart under traffic, seen from the gateway (fail-closed, a real redis-server child
process, the mock provider, a local webhook receiver for the on-call channel): no request is
refused once Redis answers PING again, and the counter reset is raised once as a metric, a
log line and an alarm (gateway/quotas/reset.py)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.telemetry.sink import InMemorySink
from gateway.testing import MockBehaviour, create_mock_openai
from meterline.config import ConfigError, parse_config
from tests.alarms.receivers import Receiver, serve
from tests.gateway.quotas.redis_server import RedisServer, redis_server
from tests.servers import serve_in_thread

KEY = "agent-key-reset-watch-0001"
AFTER_PING = 600

CONFIG = """
model_list:
  - model_name: chat
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{provider}/v1", api_key: sk-mock}}
agents:
  - {{id: busy-bot, team: busy, key: {key}, limits: {{rpm: 1000000, tokens_per_day: 1000000000}}}}
quota_store: {{redis_url: "{redis}", fail_mode: closed, timeout_seconds: 2, key_prefix: "reset:"}}
alerts:
  channels:
    oncall: {{type: webhook, webhook: "{webhook}"}}
  oncall_channels: [oncall]
"""


async def traffic(url: str, server: RedisServer) -> tuple[list[int], list[int]]:
    """8 clients send requests without pause; Redis restarts (SIGTERM, start, PING) while they
    do. Returns the statuses of the requests started before PING answered, and of the
    `AFTER_PING` requests started after."""
    before: list[int] = []
    after: list[int] = []
    restarted, warmed = asyncio.Event(), asyncio.Event()
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while len(after) < AFTER_PING:
                started_after_ping = restarted.is_set()
                response = await http.post(
                    "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}
                )
                (after if started_after_ping else before).append(response.status_code)
                if len(before) >= 100:
                    warmed.set()

    async def restart() -> None:
        await warmed.wait()
        await asyncio.to_thread(server.restart)  # returns once the new process answers PING
        restarted.set()

    await asyncio.gather(restart(), *(client() for _ in range(8)))
    return before, after


def test_a_redis_restart_under_traffic_refuses_nothing_once_redis_answers_and_raises_one_reset_alarm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    behaviour = MockBehaviour(accepted_keys={"sk-mock"}, record=False)
    with (
        redis_server(tmp_path) as server,
        serve(Receiver("webhook")) as receiver,
        serve_in_thread(create_mock_openai(behaviour)) as provider,
        caplog.at_level(logging.INFO, logger="gateway.quotas"),
    ):
        text = CONFIG.format(provider=provider, key=KEY, redis=server.url, webhook=receiver.url)
        config = parse_config(text, "reset.yaml", environ={})
        with serve_in_thread(create_app(config, sink=InMemorySink())) as url:
            before, after = asyncio.run(traffic(url, server))
            metrics = httpx.get(f"{url}/metrics").text
        # The gateway has shut down: its background work (the alarm's delivery) is done.
    print(f"before PING: {before.count(200)} x 200, {before.count(503)} x 503; after: {len(after)}")
    assert after[:AFTER_PING] == [200] * AFTER_PING
    assert set(before) <= {200, 503} and before[:100] == [200] * 100
    assert "meterline_quota_store_resets_total 1.0" in metrics.splitlines()
    resets = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and r.name == "gateway.quotas.reset"]
    assert len(resets) == 1 and resets[0].startswith("quota store counters were reset (epoch ")
    assert "meterline quotas rebuild" in resets[0]
    [alarm] = receiver.received
    fields: dict[str, Any] = alarm["fields"]
    assert (alarm["title"], alarm["severity"], fields["kind"]) == (
        "Meterline: quota counters were reset",
        "critical",
        "quota_store_reset",
    )
    assert fields["key_prefix"] == "reset:" and fields["previous_epoch"] != fields["epoch"]
    assert "meterline quotas rebuild" in alarm["text"]


def test_oncall_channels_must_name_configured_channels() -> None:
    text = "alerts:\n  channels: {pager: {type: slack, webhook: https://hooks.example/x}}\n  oncall_channels: [pagr]\n"
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "alerts.yaml", environ={})
    assert "alerts.yaml" in str(raised.value) and "oncall_channels[0]" in str(raised.value)
    assert "'pagr'" in str(raised.value)
