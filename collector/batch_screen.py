"""The fast answer for a clean batch: does any usage record of this table break a rule?

Answered with numpy over the Arrow buffers, never a per-row Python step: all integer columns
as one matrix, all floats as another, every string column's lengths and bytes in one pass, ids
in the built-in formats byte-wise, costs against the price table per model. It may only err
towards "maybe not": `RecordValidator` (collector/validation.py) then runs the exact checks,
which find the rows and their reasons. A batch of 512 gateway records takes a few dozen numpy
operations, whatever its size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collector.price_rates import PriceRates
from meterline.layout import PARTITION_KEY
from meterline.record_limits import GATEWAY_REQUEST_ID_PATTERN, ID_PATTERN, RecordLimits

Clock = Callable[[], float]

ID_COLUMNS = ("agent_id", "team", "project")
HEX_IDS = {"trace_id": r"^[0-9a-f]{32}$", "span_id": r"^[0-9a-f]{16}$"}
US = 1_000_000


def float_ceiling(name: str, limits: RecordLimits) -> float | None:
    """The largest value a float column may hold (by its name's unit), None for no bound."""
    if name.endswith("_usd"):
        return limits.max_cost_usd
    if name.endswith("_ms"):
        return limits.max_latency_ms
    return None


def int_ceiling(name: str, limits: RecordLimits) -> int | None:
    """The largest value an integer column may hold, None for no bound."""
    if name.endswith("_tokens"):
        return limits.max_tokens
    if name == "attempts":
        return limits.max_attempts
    if name == "http_status":
        return 999
    return None


def id_pattern(name: str, limits: RecordLimits) -> str | None:
    """The pattern a string column must match, None for a dimension string."""
    if name == "request_id":
        return limits.request_id_pattern
    if name in ID_COLUMNS:
        return limits.id_pattern
    return HEX_IDS.get(name)


class BatchScreen:
    """`clean(table)`: True only when no record of the table breaks a rule."""

    def __init__(self, limits: RecordLimits, prices: PriceRates | None = None, clock: Clock = time.time) -> None:
        self.limits = limits
        self._prices = prices
        self._clock = clock
        self._last_plan: tuple[pa.Schema, _Plan] | None = None

    def clean(self, table: pa.Table) -> bool:
        """True only if no record breaks a rule, answered with numpy over the Arrow buffers: all
        integer columns as one matrix, all floats as another, every string column's lengths and
        bytes in one pass, and no per-row Python step. False sends the batch to the exact checks
        (`RecordValidator`'s), which name the rows and their reasons, so this may err only towards False
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
        now_us = int(self._clock() * US)
        start = np.frombuffer(arrays[plan.ts_start].buffers()[1], dtype=np.int64, count=count)
        newest = now_us + int(self.limits.max_future_seconds * US)
        if start.min() < now_us - int(self.limits.max_past_days * 86_400 * US) or start.max() > newest:
            return False
        if plan.ts_end is not None:
            end = np.frombuffer(arrays[plan.ts_end].buffers()[1], dtype=np.int64, count=count)
            if end.max() > newest or bool((end < start).any()):
                return False
        if plan.date is not None:
            day = np.frombuffer(arrays[plan.date].buffers()[1], dtype=np.int32, count=count)
            if bool((start // (86_400 * US) != day).any()):
                return False
        return True


_HEX_CHARS = b"0123456789abcdef"
_ID_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@-"
_ALNUM_BYTES = np.zeros(256, dtype=bool)
_ALNUM_BYTES[list(_ID_CHARS[:62])] = True

_BYTEWISE: dict[str, tuple[bytes, int]] = {
    GATEWAY_REQUEST_ID_PATTERN: (b"req_", 36),
    HEX_IDS["trace_id"]: (b"", 32),
    HEX_IDS["span_id"]: (b"", 16),
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
                floats.append((i, float_ceiling(f.name, limits) or math.inf))
            elif f.type == pa.int64():
                ints.append((i, int_ceiling(f.name, limits) or math.inf))
            elif f.type == pa.string() and f.name != "usage_raw":
                pattern = id_pattern(f.name, limits)
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
        data = np.frombuffer(b"".join(buffer for a in dims if (buffer := a.buffers()[2]) is not None), np.uint8)
        if bool((data < 0x20).any()) or bool((data == 0x7F).any()):  # compares run SIMD; a table lookup did not
            return False
    for pattern, indexes in plan.ids.items():
        if pattern in _BYTEWISE and not all(_id_bytes_clean(arrays[i], pattern) for i in indexes):
            return False
    return True


def _id_bytes_clean(array: pa.Array, pattern: str) -> bool:
    """The bytes of one id column (lengths already checked) fit its built-in format. Character
    sets by `bytes.translate` (deleting the allowed bytes leaves nothing, or only the prefix's
    non-hex letters): a C loop, several times faster than a numpy table lookup per byte."""
    offsets = _offsets(array)
    buffer = array.buffers()[2]
    raw = b"" if buffer is None else buffer.to_pybytes()[offsets[0] : offsets[-1]]
    if pattern == ID_PATTERN:
        lengths = np.diff(offsets)
        present = lengths > 0
        # An empty id fails, unless the slot is a null (no project).
        if not bool(present.all()) and (array.null_count == 0 or bool((present < np.asarray(array.is_valid())).any())):
            return False
        if raw.translate(None, _ID_CHARS):
            return False
        firsts = np.frombuffer(raw, dtype=np.uint8)[(offsets[:-1] - offsets[0])[present]]
        return bool(_ALNUM_BYTES[firsts].all())
    if array.null_count:
        return False
    prefix, width = _BYTEWISE[pattern]
    if raw.translate(None, _HEX_CHARS) != prefix.translate(None, _HEX_CHARS) * len(array):
        return False
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(len(array), width)
    return not prefix or bool((rows[:, : len(prefix)] == np.frombuffer(prefix, dtype=np.uint8)).all())


def _costs_clean(arrays: list[pa.Array], where: _CostColumns, prices: PriceRates, limits: RecordLimits) -> bool:
    """`_costs` finds nothing: rates per (provider, model) pair (one dictionary encoding of the
    pairs, a handful per batch), then numpy over the token columns."""
    pairs = pc.dictionary_encode(
        pc.binary_join_element_wise(arrays[where.provider], arrays[where.model], "\x00", null_handling="replace")
    )
    rates = np.zeros((len(pairs.dictionary), 5))  # input, output, cache read, cache write, highest
    for k, pair in enumerate(pairs.dictionary.to_pylist()):
        provider, _, model = pair.partition("\x00")
        found = prices.lookup(model, provider or None) if model else None  # no model: nothing priced
        if found is not None:
            rates[k] = (found.input, found.output, found.cache_read, found.cache_write, found.highest)
    if not rates.any():
        return True
    per_row = rates[pairs.indices.to_numpy()]
    count = len(per_row)
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
