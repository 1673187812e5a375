"""collector/validation.py: which usage records the ledger takes, and why the others are refused."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import pyarrow as pa
import pyarrow.compute
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.batch_screen import BatchScreen
from collector.decode import decode_logs
from collector.price_rates import PriceRates
from collector.validation import RecordValidator
from collector.wire import Encoding
from meterline.otlp_usage import to_log_record
from meterline.record_limits import RecordLimits
from meterline.usage_record import UsageRecord, usage_table
from tests.collector.otlp_fixtures import gateway_id, logs_request, make_usage, otlp_json

START = dt.datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=dt.UTC)  # make_usage's ts_start
NOW = START + dt.timedelta(hours=1)
PRICES = PriceRates.bundled()


def _validator(**limits: Any) -> RecordValidator:
    return RecordValidator(RecordLimits(**limits), PRICES, clock=NOW.timestamp)


def _record(n: int, **overrides: Any) -> UsageRecord:
    return make_usage(gateway_id(n), **overrides)


def _at(when: dt.datetime) -> dict[str, Any]:
    return {"ts_start": when, "ts_end": when + dt.timedelta(seconds=1), "date": when.date()}


FAR_FUTURE = dt.datetime(2500, 1, 1, tzinfo=dt.UTC)

# One defect per record, and the exact rule codes it must be refused with.
DEFECTS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("nan cost", {"cost_usd": math.nan}, ["cost_usd.not_finite"]),
    ("negative cost", {"cost_usd": -1.0}, ["cost_usd.negative"]),
    ("infinite cost", {"cost_usd": math.inf}, ["cost_usd.not_finite", "cost_usd.above_price_ceiling"]),
    ("forged cost", {"cost_usd": 1234.5}, ["cost_usd.too_large", "cost_usd.above_price_ceiling"]),
    ("free priced tokens", {"cost_usd": 0.0}, ["cost_usd.zero_for_priced_model"]),
    ("cost far above tokens", {"cost_usd": 0.5}, ["cost_usd.above_price_ceiling"]),
    ("negative tokens", {"output_tokens": -5}, ["output_tokens.negative"]),
    ("too many tokens", {"input_tokens": 10**9, "cost_usd": 200.0}, ["input_tokens.too_large"]),
    ("nan latency", {"latency_ms": math.nan}, ["latency_ms.not_finite"]),
    ("year 2500", _at(FAR_FUTURE), ["ts_start.in_future", "ts_end.in_future"]),
    ("a year old", _at(NOW - dt.timedelta(days=365)), ["ts_start.too_old"]),
    ("ends before it starts", {"ts_end": START - dt.timedelta(seconds=1)}, ["ts_end.before_start"]),
    ("date of another day", {"date": dt.date(2025, 3, 15)}, ["date.mismatch"]),
    ("path in agent id", {"agent_id": "../x\nbad"}, ["agent_id.format"]),
    ("space in team", {"team": "sup port"}, ["team.format"]),
    ("empty project", {"project": ""}, ["project.format"]),
    ("short trace id", {"trace_id": "abc"}, ["trace_id.format"]),
    ("upper-case span id", {"span_id": "B7AD6B7169203331"}, ["span_id.format"]),
    ("newline in model", {"model_requested": "gpt\n4o"}, ["model_requested.control_chars"]),
    ("long provider", {"provider": "p" * 300}, ["provider.too_long"]),
    ("control char in a tag", {"tags": {"tier": "gold\x00"}}, ["tags.bad_value"]),
    ("too many tags", {"tags": {f"k{i}": "v" for i in range(65)}}, ["tags.too_many"]),
    ("huge usage_raw", {"usage_raw": "x" * 70_000}, ["usage_raw.too_long"]),
]


@pytest.mark.parametrize(("overrides", "codes"), [(o, c) for _, o, c in DEFECTS], ids=[n for n, _, _ in DEFECTS])
def test_each_defect_is_refused_with_its_rules_and_the_rest_of_the_batch_passes(
    overrides: dict[str, Any], codes: list[str]
) -> None:
    records = [_record(1), _record(2, **overrides), _record(3)]
    verdict = _validator().split(usage_table([r.as_row() for r in records]))

    assert verdict.good.column("request_id").to_pylist() == [gateway_id(1), gateway_id(3)]
    assert verdict.bad.column("request_id").to_pylist() == [gateway_id(2)]
    assert [[p.code for p in problems] for problems in verdict.problems] == [codes]


def test_a_bad_request_id_is_named() -> None:
    records = [_record(1), dataclasses.replace(_record(2), request_id="../../etc/passwd\n")]
    verdict = _validator().split(usage_table([r.as_row() for r in records]))

    assert verdict.good.num_rows == 1
    assert [str(p) for p in verdict.problems[0]] == [
        "request_id: '../../etc/passwd\\n' does not match ^req_[0-9a-f]{32}$"
    ]


def test_a_clean_batch_is_returned_whole() -> None:
    records = [
        _record(n, cache_hit=n % 2 == 0, cost_usd=0.0 if n % 2 == 0 else 0.000387, project=None if n % 3 else "desk")
        for n in range(50)
    ]
    table = usage_table([r.as_row() for r in records])
    verdict = _validator().split(table)

    assert verdict.good is table
    assert verdict.bad.num_rows == 0


def test_an_unpriced_model_is_not_held_to_prices_and_limits_are_settings() -> None:
    free = _record(1, model="house-model", provider="local", cost_usd=0.0)
    pricey = _record(2, cost_usd=1.5, input_tokens=2_000_000, output_tokens=0, cache_read_input_tokens=0)
    table = usage_table([free.as_row(), pricey.as_row()])

    assert _validator().split(table).bad.num_rows == 0
    tight = _validator(max_cost_usd=1.0).split(table)
    assert [[p.code for p in problems] for problems in tight.problems] == [["cost_usd.too_large"]]
    assert str(tight.problems[0][0]) == "cost_usd: 1.5 is above the limit of 1"


def test_a_spool_replayed_after_an_outage_still_lands_within_the_past_window() -> None:
    late = _record(1, **_at(NOW - dt.timedelta(days=89)))
    table = usage_table([late.as_row()])

    assert _validator().split(table).bad.num_rows == 0
    assert _validator(max_past_days=30).split(table).bad.num_rows == 1


@pytest.mark.parametrize("decoder", ["native", "python-protobuf", "json"])
def test_every_decoder_gives_the_same_verdict(decoder: str) -> None:
    records = [_record(1), _record(2, cost_usd=math.nan), _record(3, agent_id="../x\nbad"), _record(4)]
    request = logs_request(*(to_log_record(r) for r in records))
    if decoder == "json":
        table = decode_logs(otlp_json(request), Encoding.JSON).table
    else:
        table = decode_logs(request.SerializeToString(), Encoding.PROTOBUF, native=decoder == "native").table
    assert table is not None

    verdict = _validator().split(table)

    assert verdict.good.column("request_id").to_pylist() == [gateway_id(1), gateway_id(4)]
    assert [[p.code for p in problems] for problems in verdict.problems] == [
        ["cost_usd.not_finite"],
        ["agent_id.format"],
    ]


def test_a_column_added_to_the_record_is_checked_by_its_type() -> None:
    table = usage_table([_record(1).as_row(), _record(2).as_row()])
    table = table.append_column("extra_usd", pa.array([1.0, -2.0])).append_column("note", pa.array(["ok", "a\x07"]))

    verdict = _validator().split(table)

    assert verdict.good.column("request_id").to_pylist() == [gateway_id(1)]
    assert [[p.code for p in problems] for problems in verdict.problems] == [
        ["extra_usd.negative", "note.control_chars"]
    ]


def test_limits_refuse_unanchored_patterns() -> None:
    with pytest.raises(ValueError, match="anchored"):
        RecordLimits(request_id_pattern="req_.*")


# Values each field may take in the property below: valid ones and every kind of defect.
_CHOICES: dict[str, list[Any]] = {
    "cost_usd": [0.000387, 0.0, -0.01, math.nan, math.inf, -math.inf, 5e-4, 1e6],
    "cost_saved_usd": [0.0, 0.001, -1.0, math.nan],
    "latency_ms": [1500.0, 0.0, -1.0, math.inf, 1e12],
    "ttft_ms": [None, 120.0, -3.0, math.nan],
    "input_tokens": [1200, 0, -1, 10**9],
    "output_tokens": [345, 0, -7],
    "cache_read_input_tokens": [1000, 0, 5000],
    "attempts": [1, 0, -1, 101],
    "http_status": [200, 499, 1000, -1],
    "agent_id": ["support-bot", "a", "", "-lead", "x" * 128, "x" * 129, "../etc", "b\x7f", "ü-bot"],
    "team": ["support", "t.e:a@m_1", "sp ace"],
    "project": [None, "helpdesk", "", "p/q"],
    "model": [None, "gpt-4o-mini-2024-07-18", "house-model", "gpt\n"],
    "provider": [None, "openai", "local"],
    "status": ["ok", "error", "o\tk", "é" * 200, "é" * 257],
    "trace_id": ["0af7651916cd43dd8448eb211c80319c", "0AF7651916CD43DD8448EB211C80319C", "0af7", "g" * 32],
    "span_id": ["b7ad6b7169203331", "b7ad6b716920333", "b7ad6b71692033z1"],
    "request_id": [None, "req_" + "f" * 32, "req-" + "f" * 32, "req_" + "f" * 31, "REQ_" + "f" * 32],
    "cache_hit": [False, True],
    "tags": [{}, {"tier": "gold"}, {"tier": "go\nld"}, {"k" * 300: "v"}],
    "ts_start": [START, NOW + dt.timedelta(minutes=10), NOW - dt.timedelta(days=91)],
}


_CHANGE = st.one_of(
    st.just({}),
    st.sampled_from(sorted(_CHOICES)).flatmap(lambda name: st.sampled_from(_CHOICES[name]).map(lambda v: {name: v})),
)
"""One record: as `make_usage` makes it (valid), or with one field set to one of its choices."""


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_CHANGE, max_size=2), min_size=1, max_size=6))
def test_the_fast_screen_never_clears_a_batch_the_exact_checks_refuse(picks: list[list[dict[str, Any]]]) -> None:
    records = []
    for n, changes in enumerate(picks):
        fields: dict[str, Any] = {k: v for change in changes for k, v in change.items()}
        start = fields.pop("ts_start", START)
        fields |= {"ts_start": start, "ts_end": start + dt.timedelta(seconds=1), "date": start.date()}
        request_id = fields.pop("request_id", None) or gateway_id(n)
        records.append(dataclasses.replace(_record(n, **fields), request_id=request_id))
    table = usage_table([r.as_row() for r in records])
    validator = _validator()

    exact = list(validator._findings(table))
    refused = any(pa.compute.any(pa.compute.fill_null(f.mask, False)).as_py() for f in exact)
    if BatchScreen(validator.limits, PRICES, clock=NOW.timestamp).clean(table):
        assert not refused, [f"{f.field}.{f.rule}" for f in exact]
    verdict = validator.split(table)
    assert verdict.good.num_rows + verdict.bad.num_rows == len(records)
    assert (verdict.bad.num_rows > 0) == refused


def test_limits_come_from_the_config_and_a_bad_one_names_its_field() -> None:
    from collector.settings import CollectorSettings
    from meterline.config import ConfigError, parse_config

    config = parse_config("collector:\n  validation: {max_cost_usd: 5000, max_past_days: 30}\n", "m.yaml", {})
    limits = CollectorSettings.from_config(config, "/tmp/data").validation
    assert (limits.max_cost_usd, limits.max_past_days, limits.max_tokens) == (5000.0, 30.0, 50_000_000)

    with pytest.raises(
        ConfigError, match=r"^m.yaml: collector.validation.max_cost_usd: Input should be greater than 0"
    ):
        parse_config("collector:\n  validation: {max_cost_usd: -1}\n", "m.yaml", {})
    with pytest.raises(ConfigError, match=r"^m.yaml: collector.validation.max_tokenz: Extra inputs are not permitted"):
        parse_config("collector:\n  validation: {max_tokenz: 5}\n", "m.yaml", {})
    with pytest.raises(ConfigError, match=r"^m.yaml: agents\[0\].id: String should match pattern"):
        parse_config("agents:\n  - {id: ../x, team: t}\n", "m.yaml", {})
