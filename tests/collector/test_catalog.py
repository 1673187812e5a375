from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from collector.catalog import CatalogBusy, ensure_catalog, open_catalog
from collector.writer import ParquetWriter
from meterline.layout import DataLayout
from meterline.span_row import SpanRow
from tests.collector.otlp_fixtures import make_usage


def _describe(layout: DataLayout, view: str) -> list[tuple[str, str]]:
    with open_catalog(layout) as con:
        return [(name, kind) for name, kind, *_ in con.execute(f"DESCRIBE {view}").fetchall()]


def _span(span_id: str) -> dict[str, object]:
    start = dt.datetime(2025, 3, 14, 12, tzinfo=dt.UTC)
    row = SpanRow(
        trace_id="ab" * 16,
        span_id=span_id,
        name="chat",
        ts_start=start,
        ts_end=start,
        duration_ms=0.0,
        date=start.date(),
    )
    return {name: getattr(row, name) for name in SpanRow.__dataclass_fields__}


def test_fresh_data_dir_has_empty_typed_views(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path / "data")

    assert ensure_catalog(layout) == frozenset()

    with open_catalog(layout) as con:
        assert con.execute("SELECT count(*) FROM usage").fetchone() == (0,)
        assert con.execute("SELECT count(*), sum(input_tokens) FROM spans").fetchone() == (0, None)
    assert ("tags", "MAP(VARCHAR, VARCHAR)") in _describe(layout, "usage")
    assert ("ts_start", "TIMESTAMP WITH TIME ZONE") in _describe(layout, "usage")


def test_placeholder_types_match_the_parquet_views(tmp_path: Path) -> None:
    empty, filled = DataLayout.at(tmp_path / "empty"), DataLayout.at(tmp_path / "filled")
    ensure_catalog(empty)
    writer = ParquetWriter(filled)
    writer.write_sync("usage", [make_usage("a").as_row()])
    writer.write_sync("spans", [_span("cd" * 8)])

    assert ensure_catalog(filled) == frozenset({"usage", "spans"})

    for view in ("usage", "spans"):
        assert _describe(empty, view) == _describe(filled, view)


def test_views_read_the_parquet_with_the_date_typed_as_date(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)
    ensure_catalog(layout)
    ParquetWriter(layout).write_sync("usage", [make_usage("a").as_row(), make_usage("b", cost_usd=0.5).as_row()])

    assert ensure_catalog(layout) == frozenset({"usage"})

    with open_catalog(layout) as con:
        row = con.execute(
            "SELECT count(*), sum(cost_usd), min(date), typeof(min(date)), any_value(tags['cost_center']) "
            "FROM usage WHERE date = DATE '2025-03-14'"
        ).fetchone()
        assert row == (2, 0.500387, dt.date(2025, 3, 14), "DATE", "cc-102")
        assert con.execute("SELECT count(*) FROM spans").fetchone() == (0,)


def test_open_catalog_creates_a_missing_catalog(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)
    with open_catalog(layout, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM usage").fetchone() == (0,)
    assert layout.catalog_path.exists()


def test_a_catalog_held_by_another_process_is_reported_busy(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)
    ensure_catalog(layout)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(layout.catalog_path)!r}); print('held', flush=True); "
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(CatalogBusy, match="held by another process"):
            ensure_catalog(layout, timeout_s=0.1)
    finally:
        holder.communicate("")
    assert ensure_catalog(layout) == frozenset()
