"""Every usage record checked before it is acknowledged: the decoded Arrow table (whichever
decoder made it, native or Python) split into the records the ledger takes and the ones the
quarantine takes, each of those with its reasons.

The checks run column-wise (pyarrow.compute): a cheap aggregate per column first (min/max, a
sum that NaN and infinity poison, one regex over all dimension strings at once), and per-row
masks only for a column whose aggregate failed, so a clean batch costs a few dozen vectorised
calls whatever its size. Any column of the schema is covered by its type: floats must be
finite, non-negative and bounded; integers non-negative; strings bounded and free of control
characters, whatever columns a newer `UsageRecord` adds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collector.price_rates import PriceRates
from meterline.layout import PARTITION_KEY
from meterline.record_limits import GATEWAY_REQUEST_ID_PATTERN, ID_PATTERN, RecordLimits

Clock = Callable[[], float]

_TOKEN_SUFFIX = "_tokens"
_ID_COLUMNS = ("agent_id", "team", "project")
_HEX_IDS = {"trace_id": r"^[0-9a-f]{32}$", "span_id": r"^[0-9a-f]{16}$"}
_CONTROL = r"[\x00-\x1f\x7f]"
_US = 1_000_000


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
        self._last_plan: tuple[pa.Schema, _Plan] | None = None

    def split(self, table: pa.Table) -> Verdict:
        """The batch's good rows (in order) and its bad rows with their problems."""
        if table.num_rows == 0 or self._clean(table):
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

    def _clean(self, table: pa.Table) -> bool:
        """True only if no record breaks a rule, answered with numpy over the Arrow buffers: all
        integer columns as one matrix, all floats as another, every string column's lengths and
        bytes in one pass, and no per-row Python step. False sends the batch to the exact checks
        (`_findings`), which name the rows and their reasons, so this may err only towards False
        (a null slot's bytes, for one)."""
        batches = table.to_batches()
        if len(batches) != 1:
            return False  # the decoders make one batch; anything else takes the exact path
        batch = batches[0]
        plan = self._plan(batch.schema)
        if plan.exotic:
            return False
        arrays = batch.columns
        count = batch.num_rows
        if any(arrays[i].null_count for i in plan.required) or any(a.offset for a in arrays):
            return False
        for dtype, (indexes, ceilings) in ((np.float64, plan.floats), (np.int64, plan.ints)):
            if not indexes:
                continue
            values = np.concatenate(
                [np.frombuffer(arrays[i].buffers()[1], dtype=dtype, count=count) for i in indexes]
            ).reshape(len(indexes), count)
            if dtype is np.float64 and not bool(np.isfinite(values).all()):
                return False
            if bool((values.min(axis=1) < 0).any()) or bool((values.max(axis=1) > ceilings).any()):
                return False
        chunks = [arrays[i] for i in plan.strings]
        for i in plan.maps:
            offsets = _offsets(arrays[i])
            if count and int(np.diff(offsets).max()) > self.limits.max_tags:
                return False
            chunks.extend((arrays[i].keys, arrays[i].items))
        if not _strings_clean(arrays, chunks, plan, self.limits):
            return False
        return self._times_clean(arrays, plan, count) and (
            self._prices is None or plan.costs is None or _costs_clean(arrays, plan.costs, self._prices, self.limits)
        )

    def _plan(self, schema: pa.Schema) -> _Plan:
        # Every batch brings a new schema object; comparing with the last one is cheap (hashing
        # a pyarrow schema serialises it).
        last = self._last_plan
        if last is not None and last[0].equals(schema):
            return last[1]
        plan = _Plan.of(schema, self.limits)
        self._last_plan = (schema, plan)
        return plan

    def _times_clean(self, arrays: list[pa.Array], plan: _Plan, count: int) -> bool:
        if plan.ts_start is None or count == 0:
            return True
        now_us = int(self._clock() * _US)
        start = np.frombuffer(arrays[plan.ts_start].buffers()[1], dtype=np.int64, count=count)
        newest = now_us + int(self.limits.max_future_seconds * _US)
        if start.min() < now_us - int(self.limits.max_past_days * 86_400 * _US) or start.max() > newest:
            return False
        if plan.ts_end is not None:
            end = np.frombuffer(arrays[plan.ts_end].buffers()[1], dtype=np.int64, count=count)
            if end.max() > newest or bool((end < start).any()):
                return False
        if plan.date is not None:
            day = np.frombuffer(arrays[plan.date].buffers()[1], dtype=np.int32, count=count)
            if bool((start // (86_400 * _US) != day).any()):
                return False
        return True

    def _findings(self, table: pa.Table) -> Iterator[_Finding]:
        limits = self.limits
        schema = table.schema
        strings: list[str] = []
        for f in schema:
            column = table.column(f.name)
            if not f.nullable and column.null_count:
                yield _Finding(f.name, "missing", pc.is_null(column), lambda _row: "missing")
            if pa.types.is_floating(f.type):
                yield from _numbers(f.name, column, _float_ceiling(f.name, limits), finite=True)
            elif pa.types.is_integer(f.type):
                yield from _numbers(f.name, column, _int_ceiling(f.name, limits), finite=False)
            elif pa.types.is_timestamp(f.type):
                yield from self._instants(f.name, column)
            elif pa.types.is_string(f.type) and f.name not in ("request_id", "usage_raw", *_ID_COLUMNS, *_HEX_IDS):
                strings.append(f.name)
            elif pa.types.is_map(f.type):
                yield from _tags(f.name, column, limits)
        yield from _formatted(table, "request_id", limits.request_id_pattern)
        for name, pattern in _HEX_IDS.items():
            yield from _formatted(table, name, pattern)
        for name in _ID_COLUMNS:
            yield from _formatted(table, name, limits.id_pattern)
        yield from _text(table, strings, limits.max_string_chars)
        if "usage_raw" in schema.names:
            yield from _too_long(table.column("usage_raw"), "usage_raw", limits.max_usage_raw_chars)
        yield from _times_agree(table)
        if self._prices is not None:
            yield from _costs(table, self._prices, limits.cost_ceiling_factor)

    def _instants(self, name: str, column: pa.ChunkedArray) -> Iterator[_Finding]:
        now_us = int(self._clock() * _US)
        oldest = now_us - int(self.limits.max_past_days * 86_400 * _US)
        newest = now_us + int(self.limits.max_future_seconds * _US)
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


_CONTROL_BYTES = np.zeros(256, dtype=bool)
_CONTROL_BYTES[:0x20] = True
_CONTROL_BYTES[0x7F] = True
_HEX_BYTES = np.zeros(256, dtype=bool)
_HEX_BYTES[list(b"0123456789abcdef")] = True
_ID_BYTES = np.zeros(256, dtype=bool)
_ID_BYTES[list(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@-")] = True
_ALNUM_BYTES = _ID_BYTES.copy()
_ALNUM_BYTES[list(b"._:@-")] = False
_BYTEWISE: dict[str, tuple[bytes, int]] = {
    GATEWAY_REQUEST_ID_PATTERN: (b"req_", 36),
    _HEX_IDS["trace_id"]: (b"", 32),
    _HEX_IDS["span_id"]: (b"", 16),
    ID_PATTERN: (b"", 0),
}
"""Built-in id formats checked byte-wise: (prefix, width) where the rest is lowercase hex;
width 0: the config's id format (1-128 of letters, digits and `._:@-`, a letter or digit first)."""


@dataclass(frozen=True, slots=True)
class _CostColumns:
    model: int
    provider: int
    tokens: tuple[int, int, int | None, int | None]
    """input, output, cache read, cache write."""
    money: tuple[int, ...]
    cost: int
    cache_hit: int | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which checks apply to which column indexes of one schema (built once per schema)."""

    exotic: bool
    """A column of a type the fast checks do not cover: every batch takes the exact checks."""
    required: list[int]
    floats: tuple[list[int], np.ndarray]
    ints: tuple[list[int], np.ndarray]
    strings: list[int]
    """Dimension strings: bounded, no control characters."""
    ids: dict[str, list[int]]
    """Id columns by the pattern they must match."""
    maps: list[int]
    usage_raw: int | None
    ts_start: int | None
    ts_end: int | None
    date: int | None
    costs: _CostColumns | None

    @classmethod
    def of(cls, schema: pa.Schema, limits: RecordLimits) -> _Plan:
        names = schema.names
        floats: list[tuple[int, float]] = []
        ints: list[tuple[int, float]] = []
        ids: dict[str, list[int]] = {}
        strings: list[int] = []
        maps: list[int] = []
        exotic = False
        for i, f in enumerate(schema):
            if f.type == pa.float64():
                floats.append((i, _float_ceiling(f.name, limits) or math.inf))
            elif f.type == pa.int64():
                ints.append((i, _int_ceiling(f.name, limits) or math.inf))
            elif f.type == pa.string() and f.name != "usage_raw":
                pattern = _pattern(f.name, limits)
                if pattern is None:
                    strings.append(i)
                else:
                    ids.setdefault(pattern, []).append(i)
            elif pa.types.is_map(f.type):
                maps.append(i)
            elif f.name != "usage_raw" and not (
                pa.types.is_boolean(f.type) or pa.types.is_timestamp(f.type) or pa.types.is_date32(f.type)
            ):
                exotic = True  # a column type only the exact checks know

        def at(name: str) -> int | None:
            return names.index(name) if name in names else None

        def group(pairs: list[tuple[int, float]]) -> tuple[list[int], np.ndarray]:
            return [i for i, _ in pairs], np.array([c for _, c in pairs], dtype=np.float64).reshape(-1, 1)[:, 0]

        costs = None
        needed = [at(n) for n in ("model", "provider", "input_tokens", "output_tokens", "cost_usd")]
        present = [i for i in needed if i is not None]
        if len(present) == len(needed):
            model, provider, tokens_in, tokens_out, cost = present
            costs = _CostColumns(
                model,
                provider,
                (tokens_in, tokens_out, at("cache_read_input_tokens"), at("cache_creation_input_tokens")),
                tuple(j for n in ("cost_usd", "cost_saved_usd") if (j := at(n)) is not None),
                cost,
                at("cache_hit"),
            )
        return cls(
            exotic,
            [i for i, f in enumerate(schema) if not f.nullable],
            group(floats),
            group(ints),
            strings,
            ids,
            maps,
            at("usage_raw"),
            at("ts_start"),
            at("ts_end"),
            at(PARTITION_KEY),
            costs,
        )


def _values(array: pa.Array, dtype: Any) -> np.ndarray:
    """A fixed-width array's values as numpy (a view of its buffer; a null slot holds whatever
    its bytes say, so callers may only err towards False)."""
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array) + array.offset)[array.offset :]


def _offsets(chunk: pa.Array) -> np.ndarray:
    return np.frombuffer(chunk.buffers()[1], dtype=np.int32)[chunk.offset : chunk.offset + len(chunk) + 1]


def _bytes(chunk: pa.Array, offsets: np.ndarray) -> np.ndarray:
    data = chunk.buffers()[2]
    if data is None or len(offsets) == 0:
        return np.zeros(0, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]


def _strings_clean(arrays: list[pa.Array], dims: list[pa.Array], plan: _Plan, limits: RecordLimits) -> bool:
    """Every string column at once: lengths from one concatenation of all offsets (maximum and
    minimum per column by `reduceat`), dimension strings free of control bytes (a UTF-8 byte below
    0x20 or 0x7f is never part of another character), ids in their formats byte-wise."""
    checked: list[tuple[pa.Array, int, int]] = [(a, 0, limits.max_string_chars) for a in dims]
    for pattern, indexes in plan.ids.items():
        if pattern not in _BYTEWISE:
            if not all(pc.all(pc.match_substring_regex(arrays[i], pattern)).as_py() is not False for i in indexes):
                return False
            continue
        _, width = _BYTEWISE[pattern]
        for i in indexes:
            checked.append((arrays[i], width, width) if width else (arrays[i], 0, 128))
    if plan.usage_raw is not None:
        checked.append((arrays[plan.usage_raw], 0, limits.max_usage_raw_chars))
    checked = [entry for entry in checked if len(entry[0])]
    if not checked:
        return True
    offsets = [_offsets(a) for a, _, _ in checked]
    steps = np.diff(np.concatenate(offsets))
    starts = np.cumsum([0] + [len(o) for o in offsets[:-1]])
    # Each column's lengths are the steps within its offsets; reduceat from its first step.
    # The step across a seam (into the next column) is the last of each segment but the last.
    seams = starts[1:] - 1
    longest = steps.copy()
    longest[seams] = 0
    shortest = steps.copy()
    shortest[seams] = np.iinfo(steps.dtype).max
    if bool((np.maximum.reduceat(longest, starts) > [top for _, _, top in checked]).any()):
        return False
    if bool((np.minimum.reduceat(shortest, starts) < [low for _, low, _ in checked]).any()):
        return False
    if dims:
        data = b"".join(buffer for a in dims if (buffer := a.buffers()[2]) is not None)
        if bool(_CONTROL_BYTES[np.frombuffer(data, dtype=np.uint8)].any()):
            return False
    for pattern, indexes in plan.ids.items():
        if pattern in _BYTEWISE and not all(_id_bytes_clean(arrays[i], pattern) for i in indexes):
            return False
    return True


def _id_bytes_clean(array: pa.Array, pattern: str) -> bool:
    """The bytes of one id column (lengths already checked) fit its built-in format."""
    offsets = _offsets(array)
    data = _bytes(array, offsets)
    if pattern == ID_PATTERN:
        lengths = np.diff(offsets)
        present = lengths > 0
        # An empty id fails, unless the slot is a null (no project).
        if not bool(present.all()) and (array.null_count == 0 or bool((present < np.asarray(array.is_valid())).any())):
            return False
        if not bool(_ID_BYTES[data].all()):
            return False
        return bool(_ALNUM_BYTES[data[(offsets[:-1] - offsets[0])[present]]].all())
    if array.null_count:
        return False
    prefix, width = _BYTEWISE[pattern]
    rows = data.reshape(len(array), width)
    if prefix and not bool((rows[:, : len(prefix)] == np.frombuffer(prefix, dtype=np.uint8)).all()):
        return False
    return bool(_HEX_BYTES[rows[:, len(prefix) :]].all())


def _pattern(name: str, limits: RecordLimits) -> str | None:
    if name == "request_id":
        return limits.request_id_pattern
    if name in _ID_COLUMNS:
        return limits.id_pattern
    return _HEX_IDS.get(name)


def _costs_clean(arrays: list[pa.Array], where: _CostColumns, prices: PriceRates, limits: RecordLimits) -> bool:
    """`_costs` finds nothing: rates per (model, provider) pair, then numpy over the token columns."""
    models = pc.dictionary_encode(arrays[where.model], null_encoding="encode")
    providers = pc.dictionary_encode(arrays[where.provider], null_encoding="encode")
    width = max(len(providers.dictionary), 1)
    pairs = models.indices.to_numpy().astype(np.int64) * width + providers.indices.to_numpy()
    found = np.unique(pairs)
    model_names, provider_names = models.dictionary.to_pylist(), providers.dictionary.to_pylist()
    rates = np.zeros((len(found), 5))  # input, output, cache read, cache write, highest; 0: unpriced
    for k, pair in enumerate(found.tolist()):
        name = model_names[pair // width]
        found_rates = prices.lookup(name, provider_names[pair % width]) if name is not None else None
        if found_rates is not None:
            rates[k] = (found_rates.input, found_rates.output, found_rates.cache_read, found_rates.cache_write,
                        found_rates.highest)  # fmt: skip
    if not rates.any():
        return True
    per_row = rates[np.searchsorted(found, pairs)]
    count = len(pairs)
    tokens_in, tokens_out, cache_read, cache_write = (
        _values(arrays[i], np.int64).astype(np.float64) if i is not None else np.zeros(count) for i in where.tokens
    )
    plain = np.maximum(tokens_in - cache_read - cache_write, 0.0)
    expected = plain * per_row[:, 0] + tokens_out * per_row[:, 1] + cache_read * per_row[:, 2]
    expected += cache_write * per_row[:, 3]
    zero = (_values(arrays[where.cost], np.float64) == 0.0) & (expected > 0.0)
    if where.cache_hit is not None and bool(zero.any()):
        zero &= ~arrays[where.cache_hit].to_numpy(zero_copy_only=False)
    if bool(zero.any()):
        return False
    ceiling = (tokens_in + tokens_out) * per_row[:, 4] * limits.cost_ceiling_factor + 1e-9
    priced = per_row[:, 4] > 0
    return not any(bool(((_values(arrays[i], np.float64) > ceiling) & priced).any()) for i in where.money)


def _instant(column: pa.ChunkedArray, row: int) -> str:
    return str(column[row].as_py())


def _float_ceiling(name: str, limits: RecordLimits) -> float | None:
    if name.endswith("_usd"):
        return limits.max_cost_usd
    if name.endswith("_ms"):
        return limits.max_latency_ms
    return None


def _int_ceiling(name: str, limits: RecordLimits) -> int | None:
    if name.endswith(_TOKEN_SUFFIX):
        return limits.max_tokens
    if name == "attempts":
        return limits.max_attempts
    if name == "http_status":
        return 999
    return None


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
