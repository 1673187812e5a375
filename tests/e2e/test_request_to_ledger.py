"""One request from an agent to a row in `meterline spend`: real gateway and collector processes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from meterline.defaults import DEMO_KEYS
from tests.conftest import free_port
from tests.e2e.processes import cli, meterline_env, meterline_process, stop

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm

pytestmark = pytest.mark.e2e


def price(prompt_tokens: int, completion_tokens: int) -> float:
    prompt, completion = litellm.cost_per_token(
        model="gpt-4o-mini", prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
    )
    return float(prompt) + float(completion)


def test_forty_requests_land_once_each_with_exact_tokens_and_cost(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    collector_port, gateway_port = free_port(), free_port()
    env = meterline_env(METERLINE_TELEMETRY__COLLECTOR=f"http://127.0.0.1:{collector_port}")
    shared = ["--data-dir", str(data_dir)]
    reported: dict[str, list[tuple[int, int]]] = {agent: [] for agent in DEMO_KEYS}

    with (
        meterline_process(
            [*shared, "collector", "--port", str(collector_port)],
            tmp_path,
            env,
            f"http://127.0.0.1:{collector_port}/health",
        ) as collector,
        meterline_process(
            [*shared, "gateway", "--port", str(gateway_port)],
            tmp_path,
            env,
            f"http://127.0.0.1:{gateway_port}/health/readiness",
        ) as gateway,
    ):
        for agent, key in DEMO_KEYS.items():
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{gateway_port}/v1", api_key=key, max_retries=0)
            for i in range(10):
                messages: list[ChatCompletionMessageParam] = [
                    {"role": "user", "content": f"{agent} question {i}: " + "why is the sky blue? " * i}
                ]
                response = client.chat.completions.create(model="demo", messages=messages)
                assert response.usage is not None
                reported[agent].append((response.usage.prompt_tokens, response.usage.completion_tokens))
                stream = client.chat.completions.create(
                    model="demo",
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                )
                usage = [chunk.usage for chunk in stream if chunk.usage is not None]
                assert len(usage) == 1
                reported[agent].append((usage[0].prompt_tokens, usage[0].completion_tokens))
        # SIGTERM drains the gateway: its buffered telemetry reaches the collector before it exits.
        assert stop(gateway) == 0
        assert stop(collector) == 0

    catalog = duckdb.connect()
    usage_glob = str(data_dir / "usage" / "*" / "*.parquet")
    spans_glob = str(data_dir / "spans" / "*" / "*.parquet")
    rows = catalog.execute(
        f"SELECT agent_id, input_tokens, output_tokens, cost_usd, trace_id, stream, status "
        f"FROM read_parquet('{usage_glob}')"
    ).fetchall()
    assert len(rows) == 40
    assert len({row[4] for row in rows}) == 40
    for agent in DEMO_KEYS:
        mine = [r for r in rows if r[0] == agent]
        assert len(mine) == 20
        assert sum(r[1] for r in mine) == sum(p for p, _ in reported[agent])
        assert sum(r[2] for r in mine) == sum(c for _, c in reported[agent])
        assert sum(1 for r in mine if r[5]) == 10
    for _agent, input_tokens, output_tokens, cost, _trace, _stream, status in rows:
        assert status == "ok"
        assert cost == pytest.approx(price(input_tokens, output_tokens), rel=1e-12)
    unjoined = catalog.execute(
        f"SELECT count(*) FROM read_parquet('{usage_glob}') u "
        f"ANTI JOIN read_parquet('{spans_glob}') s ON u.trace_id = s.trace_id"
    ).fetchone()
    assert unjoined == (0,)

    # No agent key anywhere in the ledger or the spans, in any column.
    for glob in (usage_glob, spans_glob):
        dumped = str(catalog.execute(f"SELECT CAST(COLUMNS(*) AS VARCHAR) FROM read_parquet('{glob}')").fetchall())
        assert "support-bot" in dumped  # the dump really holds the rows
        assert all(key not in dumped for key in DEMO_KEYS.values())

    cli([*shared, "analytics", "run"], tmp_path, env)
    report = json.loads(cli([*shared, "spend", "--by", "agent", "--since", "7d", "--format", "json"], tmp_path, env))
    by_agent = {row["agent"]: row for row in report["rows"]}
    for agent in DEMO_KEYS:
        mine = [r for r in rows if r[0] == agent]
        assert by_agent[agent]["requests"] == 20
        assert by_agent[agent]["input_tokens"] == sum(r[1] for r in mine)
        assert by_agent[agent]["output_tokens"] == sum(r[2] for r in mine)
        assert by_agent[agent]["cost_usd"] == pytest.approx(sum(r[3] for r in mine), abs=1e-9)
    assert report["total"]["requests"] == 40
