from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import defaultdict
from decimal import Decimal

import pytest

from analytics.jobs import run_once
from analytics.spend_report import parse_since, render, spend_report
from meterline.layout import DataLayout
from meterline.usage_record import UsageRecord
from tests.ledger_fixtures import exact_usd, sample_records, write_ledger

TODAY = dt.date(2026, 11, 14)
SINCE = TODAY - dt.timedelta(days=2)
COLUMNS = ["agent", "requests", "input_tokens", "output_tokens", "cost_usd"]


@pytest.fixture
def records(layout: DataLayout) -> list[UsageRecord]:
    records = sample_records(TODAY, days=5)
    write_ledger(layout, records)
    run_once(layout)
    return [r for r in records if r.date >= SINCE]


def test_report_by_agent_is_exact_and_most_expensive_first(layout: DataLayout, records: list[UsageRecord]) -> None:
    by_agent: dict[str, list[UsageRecord]] = defaultdict(list)
    for r in records:
        by_agent[r.agent_id].append(r)

    report = spend_report(layout, "agent", SINCE)

    assert report.columns == COLUMNS
    assert report.rows() == sorted(
        (
            (
                agent,
                len(group),
                sum(r.input_tokens for r in group),
                sum(r.output_tokens for r in group),
                exact_usd(group),
            )
            for agent, group in by_agent.items()
        ),
        key=lambda row: (-row[4], row[0]),
    )


@pytest.mark.parametrize("by", ["agent", "team", "model"])
def test_every_grouping_adds_up_to_the_same_total(layout: DataLayout, records: list[UsageRecord], by: str) -> None:
    report = spend_report(layout, by, SINCE)  # type: ignore[arg-type]

    assert report.columns[0] == by
    total = json.loads(render(report, "json"))["total"]
    assert total == {
        "requests": len(records),
        "input_tokens": sum(r.input_tokens for r in records),
        "output_tokens": sum(r.output_tokens for r in records),
        "cost_usd": exact_usd(records),
    }


def test_until_bounds_the_window(layout: DataLayout, records: list[UsageRecord]) -> None:
    report = spend_report(layout, "team", SINCE, until=SINCE)

    assert report["requests"].sum() == sum(r.date == SINCE for r in records)


def test_missing_mart_gives_an_empty_report(layout: DataLayout) -> None:
    report = spend_report(layout, "model", SINCE)

    assert report.height == 0
    assert report.columns == ["model", *COLUMNS[1:]]
    assert json.loads(render(report, "json"))["total"] == {
        "requests": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
    }
    assert render(report, "table").splitlines()[-1].split() == ["TOTAL", "0", "0", "0", "0.000000"]


def test_json_carries_exact_numbers(layout: DataLayout, records: list[UsageRecord]) -> None:
    report = spend_report(layout, "agent", SINCE)

    document = json.loads(render(report, "json", since=SINCE))

    assert document["by"] == "agent"
    assert document["since"] == SINCE.isoformat()
    assert document["until"] is None
    assert document["rows"] == report.rows(named=True)
    assert document["total"]["cost_usd"] == exact_usd(records)


def test_csv_has_a_header_and_exact_numbers(layout: DataLayout, records: list[UsageRecord]) -> None:
    report = spend_report(layout, "agent", SINCE)

    lines = list(csv.reader(io.StringIO(render(report, "csv"))))

    assert lines[0] == COLUMNS
    parsed = [(a, int(n), int(i), int(o), float(c)) for a, n, i, o, c in lines[1:]]
    assert parsed == report.rows()


def test_table_is_aligned_with_a_total_row(layout: DataLayout, records: list[UsageRecord]) -> None:
    report = spend_report(layout, "agent", SINCE)

    lines = render(report, "table").splitlines()

    assert lines[0].split() == COLUMNS
    assert len({len(line) for line in lines}) == 1  # every column padded to one width
    assert len(lines) == 1 + 1 + report.height + 1 + 1  # header, rule, rows, rule, total
    total = lines[-1].split()
    assert total[0] == "TOTAL"
    assert total[1:] == [
        f"{len(records):,}",
        f"{sum(r.input_tokens for r in records):,}",
        f"{sum(r.output_tokens for r in records):,}",
        f"{exact_usd(records):,.6f}",
    ]
    first_agent = lines[2].split()
    assert first_agent[0] == report["agent"][0]
    assert first_agent[-1] == f"{report['cost_usd'][0]:,.6f}"


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_output_is_ready_to_print(layout: DataLayout, records: list[UsageRecord], fmt: str) -> None:
    text = render(spend_report(layout, "agent", SINCE), fmt)  # type: ignore[arg-type]

    assert text and not text.endswith("\n")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7d", dt.date(2026, 11, 7)),
        ("0d", TODAY),
        ("24h", dt.date(2026, 11, 13)),
        ("12h", dt.date(2026, 11, 13)),
        ("25h", dt.date(2026, 11, 12)),
        ("2026-11-01", dt.date(2026, 11, 1)),
        (" 30d ", dt.date(2026, 10, 15)),
    ],
)
def test_parse_since(value: str, expected: dt.date) -> None:
    assert parse_since(value, TODAY) == expected


@pytest.mark.parametrize("value", ["", "7", "d", "-3d", "7w", "2026-13-01", "yesterday"])
def test_parse_since_rejects_with_the_accepted_forms(value: str) -> None:
    with pytest.raises(ValueError, match=r"--since .*7d, 24h.*2026-11-01"):
        parse_since(value, TODAY)


def test_top_keeps_the_biggest_and_sums_the_rest(layout: DataLayout, records: list[UsageRecord]) -> None:
    full = spend_report(layout, "agent", SINCE)

    top = spend_report(layout, "agent", SINCE, top=2)

    assert top.head(2).equals(full.head(2))
    assert top["agent"].to_list()[-1] == "(others)"
    assert top.height == 3
    assert top["requests"][-1] == full["requests"].slice(2).sum()
    assert json.loads(render(top, "json"))["total"] == json.loads(render(full, "json"))["total"]


def test_by_project(layout: DataLayout, records: list[UsageRecord]) -> None:
    report = spend_report(layout, "project", SINCE)

    assert report.columns[0] == "project"
    assert dict(zip(report["project"], report["requests"], strict=True)) == {
        "helpdesk": sum(r.project == "helpdesk" for r in records),
        None: sum(r.project is None for r in records),
    }


def test_csv_and_json_write_every_dollar_figure_in_one_fixed_point_form(
    layout: DataLayout, records: list[UsageRecord]
) -> None:
    report = spend_report(layout, "model", SINCE)

    csv_costs = [row[-1] for row in csv.reader(io.StringIO(render(report, "csv")))][1:]
    json_text = render(report, "json")
    json_costs = [line.split(": ")[1].rstrip(",") for line in json_text.splitlines() if '"cost_usd"' in line]

    # 0.080286 beside 0.00521355 read as one row rounded to 6 places and the other not.
    assert csv_costs == [f"{Decimal(repr(c)):.12f}" for c in report["cost_usd"]]
    assert json_costs == [*csv_costs, f"{Decimal(repr(exact_usd(records))):.12f}"]
    assert json.loads(json_text)["total"]["cost_usd"] == exact_usd(records)


def test_by_model_counts_requests_no_model_answered_apart(layout: DataLayout, records: list[UsageRecord]) -> None:
    report = spend_report(layout, "model", SINCE)

    unanswered = [r for r in records if r.provider is None]
    assert unanswered  # the fixture's failed requests, under the alias they asked for
    rows = dict(zip(report["model"], report["requests"], strict=True))
    assert rows.pop("(refused/failed)") == len(unanswered)
    assert rows == {m: sum(r.model == m for r in records) for m in {r.model for r in records if r.model}}
