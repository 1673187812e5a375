"""Cached reads for the pages: the marts and the ledger, each cache entry keyed on what it read.

`st.cache_data` keeps a result for `CACHE_TTL_SECONDS` and, within that, only while the files
it came from are unchanged: a mart's key holds the file's mtime (analytics replaces it whole by
rename), a ledger query's key holds the mtime of every UTC partition folder it may read (the
collector and compaction publish into a folder by rename, which changes its mtime). So a reload
after an analytics run or a new ledger file shows new numbers at once, and a widget change that
reads the same files costs no disk read.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import cast

import polars as pl
import streamlit as st

from analytics.latency_daily import MART as LATENCY_MART
from analytics.spend_daily import MART as SPEND_MART
from analytics.spend_daily import read_spend_daily
from dashboards import ledger, queries
from dashboards.filters import Filters, parse_tag
from meterline.layout import USAGE_TABLE, DataLayout

DATA_DIR_ENV = "METERLINE_DATA_DIR"
DEFAULT_DATA_DIR = "./data"
CACHE_TTL_SECONDS = 300
OPTIONS_DAYS = 400
"""How far back the sidebar looks for teams, agents and models to offer."""

FilterKey = tuple[dt.date, dt.date, str | None, str | None, str | None, str | None]


def data_dir() -> str:
    return os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR)


def layout() -> DataLayout:
    return DataLayout.at(data_dir())


def _mtime(path: os.PathLike[str] | str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def mart_stamp(mart: str) -> int:
    return _mtime(layout().mart_file(mart))


def ledger_stamp(since: dt.date, until: dt.date) -> tuple[int, ...]:
    """The mtimes of the UTC partitions a local range may read (one day either side)."""
    days = (until - since).days + 3
    here = layout()
    return tuple(_mtime(here.partition_dir(USAGE_TABLE, since + dt.timedelta(days=k - 1))) for k in range(days))


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _spend(root: str, since: dt.date, until: dt.date, stamp: int) -> pl.DataFrame:
    return queries.load_spend(DataLayout.at(root), since, until)


def spend(since: dt.date, until: dt.date) -> pl.DataFrame:
    """`spend_daily` rows of `since..until`."""
    return _spend(data_dir(), since, until, mart_stamp(SPEND_MART))


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _latency(root: str, since: dt.date, until: dt.date, stamp: int) -> pl.DataFrame:
    return queries.load_latency(DataLayout.at(root), since, until)


def latency(since: dt.date, until: dt.date) -> pl.DataFrame:
    return _latency(data_dir(), since, until, mart_stamp(LATENCY_MART))


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _options(root: str, today: dt.date, stamp: int) -> dict[str, list[str]]:
    rows = read_spend_daily(DataLayout.at(root), today - dt.timedelta(days=OPTIONS_DAYS), None)
    answered = queries.answered(rows)
    return {
        "team": sorted(rows["team"].drop_nulls().unique().to_list()),
        "agent": sorted(rows["agent_id"].drop_nulls().unique().to_list()),
        "model": sorted(answered["model"].drop_nulls().unique().to_list()),
    }


def options(today: dt.date) -> dict[str, list[str]]:
    """Teams, agents and (answering) models seen in the marts, for the sidebar."""
    return _options(data_dir(), today, mart_stamp(SPEND_MART))


def filter_key(filters: Filters) -> FilterKey:
    tag = f"{filters.tag[0]}:{filters.tag[1]}" if filters.tag else None
    return (filters.since, filters.until, filters.team, filters.agent, filters.model, tag)


def _filters(key: FilterKey) -> Filters:
    since, until, team, agent, model, tag = key
    return Filters(since, until, team, agent, model, parse_tag(tag) if tag else None)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False, max_entries=256)
def _ledger(root: str, timezone: str, key: FilterKey, stamp: tuple[int, ...], what: str, arg: object) -> object:
    rows = ledger.rows(DataLayout.at(root), timezone, _filters(key))
    if what == "breakdown":
        return ledger.breakdown(rows, str(arg))
    if what == "series":
        return ledger.series(rows, str(arg))
    if what == "totals":
        return ledger.totals(rows)
    if what == "problems":
        return ledger.problems(rows)
    if what == "daily":
        return ledger.daily(rows)
    if what == "requests":
        assert isinstance(arg, ledger.RequestQuery)
        return ledger.requests(rows, arg, last=key[1] + dt.timedelta(days=1))
    raise ValueError(f"unknown ledger query {what!r}")


def from_ledger(timezone: str, filters: Filters, what: str, arg: object = None) -> object:
    """A `dashboards.ledger` query over the filtered rows: breakdown (arg: by), series (arg:
    grain), totals, problems, daily, requests (arg: a RequestQuery)."""
    stamp = ledger_stamp(filters.since, filters.until)
    return _ledger(data_dir(), timezone, filter_key(filters), stamp, what, arg)


def breakdown(timezone: str, filters: Filters, by: str) -> pl.DataFrame:
    return cast(pl.DataFrame, from_ledger(timezone, filters, "breakdown", by))


def series(timezone: str, filters: Filters, grain: str) -> pl.DataFrame:
    return cast(pl.DataFrame, from_ledger(timezone, filters, "series", grain))


def totals(timezone: str, filters: Filters) -> dict[str, float | int]:
    return cast(dict[str, float | int], from_ledger(timezone, filters, "totals"))


def problems(timezone: str, filters: Filters) -> pl.DataFrame:
    return cast(pl.DataFrame, from_ledger(timezone, filters, "problems"))


def daily_from_ledger(timezone: str, filters: Filters) -> pl.DataFrame:
    return cast(pl.DataFrame, from_ledger(timezone, filters, "daily"))


def requests(timezone: str, filters: Filters, query: ledger.RequestQuery) -> tuple[pl.DataFrame, bool]:
    return cast(tuple[pl.DataFrame, bool], from_ledger(timezone, filters, "requests", query))
