"""Every usage record checked before it is acknowledged: the decoded Arrow table (whichever
decoder made it, native or Python) split into the records the ledger takes and the ones the
quarantine takes, each of those with its reasons.

A batch goes first to `BatchScreen` (collector/batch_screen.py), which answers "all clean" with
numpy over the Arrow buffers; only a batch it cannot clear takes the exact checks here: per-row
masks (pyarrow.compute) per rule, then a sentence per failing row. Any column of the schema is
covered by its type: floats finite, non-negative and bounded; integers non-negative; strings
bounded and free of control characters, whatever columns a newer `UsageRecord` adds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from collector.batch_screen import HEX_IDS, ID_COLUMNS, US, BatchScreen, Clock, float_ceiling, int_ceiling
from collector.price_rates import PriceRates
from meterline.layout import PARTITION_KEY
from meterline.record_limits import RecordLimits

_CONTROL = r"[\x00-\x1f\x7f]"


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a record was refused: the field, a stable rule name, and a sentence."""

    field: str
    rule: str
    detail: str

    @property
    def code(self) -> str:
        """`field.rule`, e.g. `cost_usd.not_finite`: what metrics and the CLI count by."""
        return f"{self.field}.{self.rule}"

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}"


@dataclass(slots=True)
class Verdict:
    """A batch split: `good` for the ledger, `bad` (same schema) with `problems[i]` for row i."""

    good: pa.Table
    bad: pa.Table
    problems: list[list[Problem]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Finding:
    """Rows failing one check: a boolean mask (nulls count as passing) and what to say of a row."""

    field: str
    rule: str
    mask: pa.Array | pa.ChunkedArray
    describe: Callable[[int], str]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class RecordValidator:
    """Checks usage tables against `RecordLimits` (and, for cost, against the price table)."""

    def __init__(self, limits: RecordLimits, prices: PriceRates | None = None, clock: Clock = time.time) -> None:
        self.limits = limits
        self._prices = prices
        self._clock = clock
        self._screen = BatchScreen(limits, prices, clock)

    def split(self, table: pa.Table) -> Verdict:
        """The batch's good rows (in order) and its bad rows with their problems."""
        if table.num_rows == 0 or self._screen.clean(table):
            return Verdict(table, table.slice(0, 0))
        findings = list(self._findings(table))
        if not findings:
            return Verdict(table, table.slice(0, 0))
        bad_mask = findings[0].mask
        for finding in findings[1:]:
            bad_mask = pc.or_kleene(bad_mask, finding.mask)
        bad_mask = pc.fill_null(bad_mask, False)
        bad_rows = pc.indices_nonzero(bad_mask).to_pylist()
        if not bad_rows:
            return Verdict(table, table.slice(0, 0))
        by_row: dict[int, list[Problem]] = {row: [] for row in bad_rows}
        for finding in findings:
            mask = pc.fill_null(finding.mask, False)
            for row in pc.indices_nonzero(mask).to_pylist():
                by_row[row].append(Problem(finding.field, finding.rule, finding.describe(row)))
        return Verdict(
            table.filter(pc.invert(bad_mask)),
            table.take(pa.array(bad_rows, type=pa.int64())),
            [by_row[row] for row in bad_rows],
        )

    def _findings(self, table: pa.Table) -> Iterator[_Finding]:
        limits = self.limits
        schema = table.schema
        strings: list[str] = []
        for f in schema:
            column = table.column(f.name)
            if not f.nullable and column.null_count:
                yield _Finding(f.name, "missing", pc.is_null(column), lambda _row: "missing")
            if pa.types.is_floating(f.type):
                yield from _numbers(f.name, column, float_ceiling(f.name, limits), finite=True)
            elif pa.types.is_integer(f.type):
                yield from _numbers(f.name, column, int_ceiling(f.name, limits), finite=False)
            elif pa.types.is_timestamp(f.type):
                yield from self._instants(f.name, column)
            elif pa.types.is_string(f.type) and f.name not in ("request_id", "usage_raw", *ID_COLUMNS, *HEX_IDS):
                strings.append(f.name)
            elif pa.types.is_map(f.type):
                yield from _tags(f.name, column, limits)
        yield from _formatted(table, "request_id", limits.request_id_pattern)
        for name, pattern in HEX_IDS.items():
            yield from _formatted(table, name, pattern)
        for name in ID_COLUMNS:
            yield from _formatted(table, name, limits.id_pattern)
        yield from _text(table, strings, limits.max_string_chars)
        if "usage_raw" in schema.names:
            yield from _too_long(table.column("usage_raw"), "usage_raw", limits.max_usage_raw_chars)
        yield from _times_agree(table)
        if self._prices is not None:
            yield from _costs(table, self._prices, limits.cost_ceiling_factor)

    def _instants(self, name: str, column: pa.ChunkedArray) -> Iterator[_Finding]:
        now_us = int(self._clock() * US)
        oldest = now_us - int(self.limits.max_past_days * 86_400 * US)
        newest = now_us + int(self.limits.max_future_seconds * US)
        low, high = _min_max(column.cast(pa.int64()))
        if low is not None and low < oldest and name == "ts_start":
            days = self.limits.max_past_days
            yield _Finding(
                name,
                "too_old",
                pc.less(column, pa.scalar(oldest, column.type)),
                lambda row: f"{_instant(column, row)} is more than {days:g} days before the collector's clock",
            )
        if high is not None and high > newest:
            skew = self.limits.max_future_seconds
            yield _Finding(
                name,
                "in_future",
                pc.greater(column, pa.scalar(newest, column.type)),
                lambda row: f"{_instant(column, row)} is more than {skew:g} s after the collector's clock",
            )


def _instant(column: pa.ChunkedArray, row: int) -> str:
    return str(column[row].as_py())


def _min_max(column: pa.ChunkedArray | pa.Array) -> tuple[Any, Any]:
    found = pc.min_max(column)
    return found["min"].as_py(), found["max"].as_py()


def _numbers(name: str, column: pa.ChunkedArray, ceiling: float | None, *, finite: bool) -> Iterator[_Finding]:
    """Finite (floats), not negative, not above `ceiling`; aggregates first, masks only on failure."""
    low, high = _min_max(column)
    if low is None:
        return  # no values (or only nulls)
    if finite:
        total = pc.sum(column).as_py()  # NaN and infinity (min_max skips NaN) poison the sum
        if total is None or not math.isfinite(total):
            original = column
            yield _Finding(
                name,
                "not_finite",
                pc.invert(pc.is_finite(column)),
                lambda row: f"{original[row].as_py()} is not finite",
            )
            column = pc.if_else(pc.is_finite(column), column, None)  # judged once, as not finite
            low, high = _min_max(column)
            if low is None:
                return
    if low < 0:
        yield _Finding(name, "negative", pc.less(column, 0), lambda row: f"{column[row].as_py()} is negative")
    if ceiling is not None and high > ceiling:
        yield _Finding(
            name,
            "too_large",
            pc.greater(column, pa.scalar(ceiling, column.type)),
            lambda row: f"{column[row].as_py()} is above the limit of {ceiling:g}",
        )


def _formatted(table: pa.Table, name: str, pattern: str) -> Iterator[_Finding]:
    if name not in table.schema.names:
        return
    column = table.column(name)
    matches = pc.match_substring_regex(column, pattern)
    if pc.all(matches).as_py() is False:
        yield _Finding(
            name,
            "format",
            pc.invert(matches),
            lambda row: f"{_short(column[row].as_py())} does not match {pattern}",
        )


def _text(table: pa.Table, names: list[str], longest: int) -> Iterator[_Finding]:
    """Dimension strings: one regex and one length scan over all of them together; per column
    only when that found something."""
    if not names:
        return
    chunks = [chunk for name in names for chunk in table.column(name).chunks]
    together = pa.chunked_array(chunks, type=pa.string())
    control = pc.any(pc.match_substring_regex(together, _CONTROL)).as_py()
    too_long = (pc.max(pc.utf8_length(together)).as_py() or 0) > longest
    if not (control or too_long):
        return
    for name in names:
        column = table.column(name)
        if control:
            yield from _control(column, name)
        if too_long:
            yield from _too_long(column, name, longest)


def _control(column: pa.ChunkedArray | pa.Array, name: str) -> Iterator[_Finding]:
    mask = pc.match_substring_regex(column, _CONTROL)
    if pc.any(mask).as_py():
        yield _Finding(
            name, "control_chars", mask, lambda row: f"{_short(column[row].as_py())} holds a control character"
        )


def _too_long(column: pa.ChunkedArray | pa.Array, name: str, longest: int) -> Iterator[_Finding]:
    lengths = pc.utf8_length(column)
    if (pc.max(lengths).as_py() or 0) > longest:
        yield _Finding(
            name,
            "too_long",
            pc.greater(lengths, longest),
            lambda row: f"{lengths[row].as_py()} characters, more than {longest}",
        )


def _tags(name: str, column: pa.ChunkedArray, limits: RecordLimits) -> Iterator[_Finding]:
    """A map column: how many entries, and its keys and values as dimension strings."""
    merged = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if len(merged) == 0:
        return
    kind = merged.type
    entries = pa.field("entries", pa.struct([kind.key_field, kind.item_field]), nullable=False)
    lists = merged.view(pa.list_(entries))  # the same buffers; list kernels accept it, map ones do not
    counts = pc.list_value_length(lists)
    if (pc.max(counts).as_py() or 0) > limits.max_tags:
        yield _Finding(
            name,
            "too_many",
            pc.greater(counts, limits.max_tags),
            lambda row: f"{counts[row].as_py()} entries, more than {limits.max_tags}",
        )
    flat = pc.list_flatten(lists)
    if len(flat) == 0:
        return
    parents = pc.list_parent_indices(lists)
    for part in (kind.key_field.name, kind.item_field.name):
        values = flat.field(part)
        bad = pc.or_kleene(
            pc.match_substring_regex(values, _CONTROL), pc.greater(pc.utf8_length(values), limits.max_string_chars)
        )
        bad = pc.fill_null(bad, False)
        if not pc.any(bad).as_py():
            continue
        rows = pc.unique(pc.filter(parents, bad))
        mask = pc.is_in(pa.array(range(len(merged)), type=parents.type), value_set=rows)
        yield _Finding(name, f"bad_{part}", mask, _tag_problem(part, limits.max_string_chars))


def _tag_problem(part: str, longest: int) -> Callable[[int], str]:
    return lambda _row: f"a tag {part} holds a control character or is over {longest} characters"


def _times_agree(table: pa.Table) -> Iterator[_Finding]:
    names = table.schema.names
    if "ts_start" not in names:
        return
    start = table.column("ts_start")
    if "ts_end" in names:
        end = table.column("ts_end")
        before = pc.less(end, start)
        if pc.any(before).as_py():
            yield _Finding("ts_end", "before_start", before, lambda row: f"{_instant(end, row)} is before ts_start")
    if PARTITION_KEY in names:
        day = table.column(PARTITION_KEY)
        differs = pc.not_equal(pc.cast(start, pa.date32()), day)
        if pc.any(differs).as_py():
            yield _Finding(
                PARTITION_KEY,
                "mismatch",
                differs,
                lambda row: f"{day[row].as_py()} is not the UTC date of ts_start ({_instant(start, row)})",
            )


def _costs(table: pa.Table, prices: PriceRates, factor: float) -> Iterator[_Finding]:
    """For models in the price table: tokens that cost money may not be billed 0 (unless a cache
    hit), and no cost may exceed its tokens at the model's highest rate times `factor`."""
    needed = ("model", "provider", "input_tokens", "output_tokens", "cost_usd")
    if not all(name in table.schema.names for name in needed) or table.num_rows == 0:
        return
    model, provider = table.column("model"), table.column("provider")
    pairs = pc.unique(pc.binary_join_element_wise(pc.fill_null(provider, ""), model, "\x00")).to_pylist()
    rates = {}
    for pair in pairs:
        if pair is not None:
            prov, _, name = pair.partition("\x00")
            found = prices.lookup(name, prov or None)
            if found is not None:
                rates[pair] = found
    if not rates:
        return
    keys = pc.binary_join_element_wise(pc.fill_null(provider, ""), model, "\x00")
    known = list(rates)
    index = pc.index_in(keys, value_set=pa.array(known, type=pa.string()))

    def per_row(kind: str) -> pa.ChunkedArray:
        values = pa.array([getattr(rates[k], kind) for k in known], type=pa.float64())
        return pc.take(values, index)

    tokens_in = pc.cast(table.column("input_tokens"), pa.float64())
    tokens_out = pc.cast(table.column("output_tokens"), pa.float64())
    cache_read = _tokens(table, "cache_read_input_tokens")
    cache_write = _tokens(table, "cache_creation_input_tokens")
    plain_in = pc.max_element_wise(pc.subtract(pc.subtract(tokens_in, cache_read), cache_write), 0.0)
    expected = pc.add(
        pc.add(pc.multiply(plain_in, per_row("input")), pc.multiply(tokens_out, per_row("output"))),
        pc.add(pc.multiply(cache_read, per_row("cache_read")), pc.multiply(cache_write, per_row("cache_write"))),
    )
    cost = table.column("cost_usd")
    cache_hit = table.column("cache_hit") if "cache_hit" in table.schema.names else None
    zero = pc.and_(pc.equal(cost, 0.0), pc.greater(expected, 0.0))
    if cache_hit is not None:
        zero = pc.and_(zero, pc.invert(cache_hit))
    if pc.any(zero).as_py():
        yield _Finding(
            "cost_usd",
            "zero_for_priced_model",
            zero,
            lambda row: f"0 for {expected[row].as_py():.6g} USD of tokens of the priced model {model[row].as_py()!r}",
        )
    ceiling = pc.multiply(pc.multiply(pc.add(tokens_in, tokens_out), per_row("highest")), factor)
    ceiling = pc.add(ceiling, 1e-9)  # float noise of a cost summed from per-kind products
    for name in ("cost_usd", "cost_saved_usd"):
        if name not in table.schema.names:
            continue
        money = table.column(name)
        above = pc.greater(money, ceiling)
        if pc.any(above).as_py():

            def problem(row: int, money: pa.ChunkedArray = money) -> str:
                return (
                    f"{money[row].as_py()} is above {ceiling[row].as_py():.6g} USD, its "
                    f"tokens at {model[row].as_py()!r}'s highest rate x {factor:g}"
                )

            yield _Finding(name, "above_price_ceiling", above, problem)


def _tokens(table: pa.Table, name: str) -> pa.ChunkedArray | pa.Array:
    if name not in table.schema.names:
        return pa.array([0.0] * table.num_rows, type=pa.float64())
    return pc.cast(table.column(name), pa.float64())
