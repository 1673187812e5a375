"""`meterline traces`, `meterline trace ID` and `meterline sql` as real processes, over a ledger a
real collector wrote: the agent's own spans (OpenTelemetry SDK) and the gateway's in one trace
(tests/trace_ledger.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trace_ledger import (
    AGENT_KEY,
    PROVIDER_KEY,
    REQUEST_A,
    REQUEST_B,
    REQUEST_D,
    TRACE_A,
    TRACE_B,
    TRACE_C,
    TRACE_D,
    TraceLedger,
    build_trace_ledger,
)

ENV = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
OUTPUTS: list[str] = []
"""Everything the verbs printed, checked for keys at the end."""


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> TraceLedger:
    return build_trace_ledger(tmp_path_factory.mktemp("traces") / "data")


def meterline(ledger: TraceLedger, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "meterline", "--data-dir", str(ledger.data_dir), *args],
        cwd=ledger.data_dir.parent, env=ENV, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    OUTPUTS.extend([done.stdout, done.stderr])
    assert "Traceback" not in done.stderr
    return done


def ok(ledger: TraceLedger, *args: str) -> str:
    done = meterline(ledger, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _iso(at: dt.datetime) -> str:
    return at.isoformat()


@pytest.mark.parametrize(
    ("verb", "flag"), [("traces", "--min-latency-ms"), ("trace", "--attributes"), ("sql", "--format")]
)
def test_help(verb: str, flag: str) -> None:
    done = subprocess.run([sys.executable, "-m", "meterline", verb, "--help"], capture_output=True, text=True, env=ENV)
    assert done.returncode == 0 and flag in done.stdout


def test_traces_json_gives_the_last_hours_traces_exactly(ledger: TraceLedger) -> None:
    t0 = ledger.t0
    rows = json.loads(ok(ledger, "traces", "--since", "1h", "--format", "json"))
    assert [r["trace_id"] for r in rows] == [TRACE_D, TRACE_B, TRACE_A]  # newest first; C is 3 h old
    assert rows[2] == {
        "trace_id": TRACE_A,
        "ts_start": _iso(t0),
        "duration_ms": 3000.0,
        "status": "ok",
        "agents": ["support-bot"],
        "models": ["gpt-4o-mini"],
        "requests": 1,
        "request_ids": [REQUEST_A],
        "spans": 6,
        "services": ["meterline-gateway", "support-agent"],
        "root": "handle ticket",
        "input_tokens": 1200,
        "output_tokens": 345,
        "cost_usd": 0.000387,
    }
    assert rows[0]["ts_start"] == _iso(t0 + dt.timedelta(seconds=120)) and rows[0]["spans"] == 0


def test_traces_csv_and_table(ledger: TraceLedger) -> None:
    parsed = list(csv.DictReader(io.StringIO(ok(ledger, "traces", "--since", "all", "--format", "csv"))))
    assert [r["trace_id"] for r in parsed] == [TRACE_D, TRACE_B, TRACE_A, TRACE_C]
    assert parsed[1] | {"ts_start": ""} == {
        "trace_id": TRACE_B, "ts_start": "", "duration_ms": "1800.0", "status": "ok",
        "agents": '["research-agent"]', "models": '["gpt-4o", "gpt-4o-mini"]', "requests": "1",
        "request_ids": f'["{REQUEST_B}"]', "spans": "4", "services": '["meterline-gateway"]', "root": "chat gpt-4o",
        "input_tokens": "800", "output_tokens": "200", "cost_usd": "0.00024",
    }  # fmt: skip
    assert parsed[3]["status"] == "error" and parsed[3]["cost_usd"] == "0.0"
    table = ok(ledger, "traces", "--since", "all", "--agent", "support-bot").splitlines()
    assert table[0].split() == [
        "ts_start", "trace_id", "duration_ms", "status", "agents", "models", "requests", "spans", "cost_usd", "root",
    ]  # fmt: skip
    start = ledger.t0.strftime("%Y-%m-%d %H:%M:%S.000")
    assert table[2].split() == [*start.split(), TRACE_A, "3000.0", "ok", "support-bot", "gpt-4o-mini", "1", "6",
                                "$0.000387", "handle", "ticket"]  # fmt: skip
    assert table[3] == "(1 row)"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--agent", "research-agent"], [TRACE_B]),
        (["--model", "gpt-4o"], [TRACE_B, TRACE_C]),
        (["--status", "error"], [TRACE_C]),
        (["--min-latency-ms", "2000"], [TRACE_A]),
        (["--min-cost", "0.0003"], [TRACE_A]),
        (["--request-id", REQUEST_D], [TRACE_D]),
        (["--trace-id", TRACE_B], [TRACE_B]),
        (["--limit", "1"], [TRACE_D]),
    ],
)
def test_traces_filters(ledger: TraceLedger, flags: list[str], expected: list[str]) -> None:
    rows = json.loads(ok(ledger, "traces", "--since", "7d", "--format", "json", *flags))
    assert [r["trace_id"] for r in rows] == expected


def test_trace_prints_the_waterfall_in_order_with_bars(ledger: TraceLedger) -> None:
    start = ledger.t0.strftime("%Y-%m-%d %H:%M:%S.000")
    bar = "|{}|".format
    assert ok(ledger, "trace", TRACE_A).splitlines() == [
        f"trace {TRACE_A}  {start} UTC  3000.0 ms  6 spans  1 usage record",
        f" offset ms    dur ms  {'0':<21}{'3000 ms':>21}  span",
        f"       0.0    3000.0  {bar('=' * 40)}  handle ticket [support-agent, INTERNAL]",
        f"     100.0    2500.0  {bar(' ' + '=' * 34 + ' ' * 5)}    call llm [support-agent, CLIENT]",
        f"     120.0    2460.0  {bar(' ' + '=' * 33 + ' ' * 6)}      chat gpt-4o-mini [meterline-gateway, SERVER]"
        f" <- {REQUEST_A}",
        f"     130.0     270.0  {bar(' ' + 'x' * 4 + ' ' * 35)}        chat gpt-4o-mini [meterline-gateway, CLIENT,"
        " attempt 1, ERROR]",
        f"     460.0    2110.0  {bar(' ' * 6 + '=' * 28 + ' ' * 6)}        chat gpt-4o-mini [meterline-gateway,"
        " CLIENT, retry]",
        f"    2650.0     250.0  {bar(' ' * 35 + '=' * 4 + ' ')}    post reply [support-agent, INTERNAL]",
        "usage records:",
        f"  {REQUEST_A}  agent support-bot  gpt-4o-mini -> gpt-4o-mini  ok 200  in 1200 out 345 tokens  $0.000387"
        "  attempts 2  2460.0 ms",
    ]


def test_a_request_id_opens_its_trace(ledger: TraceLedger) -> None:
    assert ok(ledger, "trace", REQUEST_B) == ok(ledger, "trace", TRACE_B)
    assert "chat gpt-4o-mini [meterline-gateway, CLIENT, fallback]" in ok(ledger, "trace", REQUEST_B)


def test_trace_json_holds_every_attribute_and_the_usage_record(ledger: TraceLedger) -> None:
    document = json.loads(ok(ledger, "trace", REQUEST_A, "--format", "json"))
    assert document["trace_id"] == TRACE_A and document["duration_ms"] == 3000.0
    spans = document["spans"]
    assert [(s["depth"], s["name"], s["role"]) for s in spans] == [
        (0, "handle ticket", None), (1, "call llm", None), (2, "chat gpt-4o-mini", None),
        (3, "chat gpt-4o-mini", "attempt 1"), (3, "chat gpt-4o-mini", "retry"), (1, "post reply", None),
    ]  # fmt: skip
    server = spans[2]
    assert server["attributes"]["meterline.request.id"] == REQUEST_A
    assert server["attributes"]["gen_ai.usage.input_tokens"] == 1200
    usage = server["usage"]
    assert (usage["request_id"], usage["input_tokens"], usage["output_tokens"], usage["cost_usd"]) == (
        REQUEST_A, 1200, 345, 0.000387,
    )  # fmt: skip
    assert usage["ts_start"] == _iso(ledger.t0 + dt.timedelta(milliseconds=120))
    assert document["usage"] == [usage]
    assert spans[0]["attributes"] == {"ticket.id": "T-1042"}
    assert spans[0]["resource_attributes"]["service.name"] == "support-agent"


def test_an_unknown_id_is_exit_1_with_a_message(ledger: TraceLedger) -> None:
    for ident in ("0" * 32, "req_ffffffffffffffffffffffffffffffff"):
        done = meterline(ledger, "trace", ident)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr == f"meterline: no trace or request with id {ident!r} in the ledger\n"


def test_sql_reads_in_every_format(ledger: TraceLedger) -> None:
    query = "SELECT request_id, agent_id, cost_usd, tags FROM usage WHERE cost_usd > 0 ORDER BY request_id"
    assert json.loads(ok(ledger, "sql", query, "--format", "json")) == [
        {"request_id": REQUEST_A, "agent_id": "support-bot", "cost_usd": 0.000387, "tags": {"cost_center": "cc-102"}},
        {"request_id": REQUEST_B, "agent_id": "research-agent", "cost_usd": 0.00024, "tags": {}},
        {"request_id": REQUEST_D, "agent_id": "triage-bot", "cost_usd": 0.000045, "tags": {}},
    ]
    assert ok(ledger, "sql", query, "--format", "csv").splitlines() == [
        "request_id,agent_id,cost_usd,tags",
        f'{REQUEST_A},support-bot,0.000387,"{{""cost_center"": ""cc-102""}}"',
        f"{REQUEST_B},research-agent,0.00024,{{}}",
        f"{REQUEST_D},triage-bot,4.5e-05,{{}}",
    ]
    table = ok(ledger, "sql", "SELECT kind, count(*) AS n FROM spans GROUP BY kind ORDER BY kind").splitlines()
    assert [line.split() for line in table] == [
        ["kind", "n"],
        ["--------", "-"],
        ["CLIENT", "7"],
        ["INTERNAL", "2"],
        ["SERVER", "3"],
        ["(3", "rows)"],
    ]
    join = "SELECT s.name, u.request_id FROM spans s JOIN usage u USING (trace_id, span_id) ORDER BY u.request_id"
    joined = json.loads(ok(ledger, "sql", join, "--format", "json"))
    assert joined == [
        {"name": "chat gpt-4o-mini", "request_id": REQUEST_A},
        {"name": "chat gpt-4o", "request_id": REQUEST_B},
        {"name": "chat gpt-4o", "request_id": "req_0000000000000000000000000000000c"},
    ]


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("DELETE FROM usage", "DELETE"),
        ("CREATE TABLE copy AS SELECT * FROM usage", "CREATE"),
        ("COPY (SELECT * FROM usage) TO 'stolen.csv'", "COPY"),
        ("ATTACH 'other.duckdb' AS other", "ATTACH"),
    ],
)
def test_sql_refuses_writes_with_exit_2(ledger: TraceLedger, statement: str, kind: str) -> None:
    before = sorted(ledger.data_dir.parent.rglob("*"))
    done = meterline(ledger, "sql", statement)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"meterline: error: sql: {kind} statements are refused: the ledger is read-only")
    assert sorted(ledger.data_dir.parent.rglob("*")) == before
    assert ok(ledger, "sql", "SELECT count(*) AS n FROM usage", "--format", "json") == '[\n {\n  "n": 4\n }\n]\n'


def test_bad_input_is_a_clear_error(ledger: TraceLedger, tmp_path: Path) -> None:
    done = meterline(ledger, "sql", "SELEC 1")
    assert done.returncode == 1 and done.stderr.startswith("meterline: query failed: Parser Error")
    done = meterline(ledger, "traces", "--since", "yesterday")
    assert done.returncode == 2 and "expected a duration (90s, 30m, 1h, 7d)" in done.stderr
    done = meterline(ledger, "traces", "--data-dir", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and f"no data dir at {tmp_path / 'nowhere'}" in done.stderr


def test_no_key_is_ever_printed(ledger: TraceLedger) -> None:
    ok(ledger, "sql", "SELECT * FROM spans", "--format", "json")
    ok(ledger, "sql", "SELECT * FROM usage", "--format", "json")
    ok(ledger, "trace", TRACE_A, "--attributes")
    assert len(OUTPUTS) > 20
    for text in OUTPUTS:
        assert AGENT_KEY not in text and PROVIDER_KEY not in text and "sk-" not in text
