"""A varied generated ledger for the mart tests: agents, teams, projects, models, providers,
every hour of the day (so local days differ from UTC dates), streams, cache hits, reasoning."""

from __future__ import annotations

import datetime as dt
import random

from meterline.usage_record import UsageRecord

AGENTS = (
    ("support-bot", "support", "helpdesk"),
    ("triage-bot", "support", "helpdesk"),
    ("research-agent", "research", None),
    ("billing-bot", "finance", "ledger"),
    ("ops-agent", "platform", "infra"),
)
MODELS = (
    ("gpt-4o-mini", "openai", 150, 600),
    ("gpt-4o", "openai", 2_500, 10_000),
    ("claude-sonnet-4", "anthropic", 3_000, 15_000),
    ("o3", "openai", 2_000, 8_000),
)


def generated_records(first: dt.date, days: int, per_day: int = 60, seed: int = 7, tag: str = "") -> list[UsageRecord]:
    """`per_day` requests per UTC date from `first`, at pseudo-random times of that date."""
    rng = random.Random(seed)
    records: list[UsageRecord] = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        for i in range(per_day):
            agent_id, team, project = AGENTS[rng.randrange(len(AGENTS))]
            model, provider, in_price, out_price = MODELS[rng.randrange(len(MODELS))]
            failed = rng.random() < 0.08
            hit = not failed and rng.random() < 0.1
            stream = rng.random() < 0.5
            tokens_in = 0 if failed else rng.randrange(10, 5_000)
            tokens_out = 0 if failed else rng.randrange(1, 2_000)
            cached = rng.randrange(0, tokens_in + 1) if tokens_in else 0
            reasoning = rng.randrange(0, tokens_out + 1) if model == "o3" else 0
            nanodollars = tokens_in * in_price + tokens_out * out_price
            start = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(seconds=rng.randrange(86_400))
            latency = float(rng.randrange(50, 9_000))
            records.append(
                UsageRecord(
                    request_id=f"gen{tag}-{day.isoformat()}-{i:05d}",
                    trace_id=f"{offset:016x}{i:016x}",
                    span_id=f"{i:016x}",
                    ts_start=start,
                    ts_end=start + dt.timedelta(milliseconds=latency),
                    latency_ms=latency,
                    ttft_ms=float(rng.randrange(20, 900)) if stream and not failed else None,
                    agent_id=agent_id,
                    team=team,
                    project=project,
                    operation="chat",
                    model_requested=model,
                    date=day,
                    model=None if failed else model,
                    provider=None if failed else provider,
                    stream=stream,
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    cache_read_input_tokens=cached,
                    reasoning_output_tokens=reasoning,
                    cost_usd=0.0 if hit else nanodollars / 1e9,
                    cost_saved_usd=nanodollars / 1e9 if hit else 0.0,
                    cache_hit=hit,
                    status="error" if failed else "ok",
                    http_status=502 if failed else 200,
                )
            )
    return records
