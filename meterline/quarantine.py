"""The quarantine: usage records refused as invalid, kept with their reasons beside the ledger.

    <data_dir>/quarantine/date=YYYY-MM-DD/part-q-*.parquet   (the day a record was quarantined)

A quarantined row is the usage record as it arrived (every ledger column; its own `date` as
`record_date`), plus why (`reasons`: rule codes such as `cost_usd.not_finite`; `details`: the
sentences; `raw_record`: the LogRecord bytes of a record that never became a row), when
(`quarantined_at`) and by whom (`source`: `collector` at ingest, `analytics`
for a bad row found in the ledger). Files go through the ledger's storage target (temp, fsync,
rename), named after their content, so a retried batch rewrites its file instead of adding one.
Nothing reads the quarantine back into the ledger; `meterline quarantine` and the DuckDB view
`quarantine` show it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

import pyarrow as pa

from meterline.layout import PARTITION_KEY
from meterline.storage.base import StorageTarget
from meterline.usage_record import usage_arrow_schema

QUARANTINE_TABLE = "quarantine"
RECORD_DATE = "record_date"
SOURCES = ("collector", "analytics")

_EXTRA = (
    pa.field("raw_record", pa.binary()),
    pa.field("reasons", pa.list_(pa.string())),
    pa.field("details", pa.string()),
    pa.field("quarantined_at", pa.timestamp("us", tz="UTC")),
    pa.field("source", pa.string()),
    pa.field(PARTITION_KEY, pa.date32()),
)


def quarantine_schema(usage: pa.Schema | None = None) -> pa.Schema:
    """Every ledger column (nullable: a hand-edited row may lack any), `date` as `record_date`,
    then the quarantine's own columns."""
    usage = usage or usage_arrow_schema()
    fields = [pa.field(RECORD_DATE if f.name == PARTITION_KEY else f.name, f.type, nullable=True) for f in usage]
    return pa.schema([*fields, *_EXTRA])


def quarantine_table(
    rows: pa.Table,
    reasons: Sequence[Sequence[str]],
    details: Sequence[str],
    source: str,
    at: dt.datetime,
    raw: Sequence[bytes] | None = None,
) -> pa.Table:
    """`rows` (ledger columns) as quarantine rows; `reasons[i]`, `details[i]` (and `raw[i]`, a
    record that never became a row) belong to row i."""
    schema = quarantine_schema()
    rows = rows.rename_columns([RECORD_DATE if n == PARTITION_KEY else n for n in rows.column_names])
    count = rows.num_rows
    columns = []
    for f in schema:
        if f.name in rows.column_names:
            columns.append(rows.column(f.name).cast(f.type))
        elif f.name == "raw_record" and raw is not None:
            columns.append(pa.array(list(raw), type=f.type))
        elif f.name == "reasons":
            columns.append(pa.array([list(r) for r in reasons], type=f.type))
        elif f.name == "details":
            columns.append(pa.array(list(details), type=f.type))
        elif f.name == "quarantined_at":
            columns.append(pa.array([at] * count, type=f.type))
        elif f.name == "source":
            columns.append(pa.array([source] * count, type=f.type))
        elif f.name == PARTITION_KEY:
            columns.append(pa.array([at.astimezone(dt.UTC).date()] * count, type=f.type))
        else:  # a ledger column this row predates
            columns.append(pa.nulls(count, type=f.type))
    return pa.Table.from_arrays(columns, schema=schema)


UNREADABLE = "record.unreadable"
"""The rule code of a usage record the collector could not turn into a row (a required
attribute missing, a value of the wrong kind): kept as its LogRecord bytes in `raw_record`."""


def unreadable_table(records: Sequence[tuple[str, bytes]], source: str, at: dt.datetime) -> pa.Table:
    """Quarantine rows for (reason, LogRecord bytes) pairs: every ledger column null but the
    request_id when the record carries one."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

    usage = usage_arrow_schema()
    ids: list[str | None] = []
    for _, raw in records:
        try:
            attributes = LogRecord.FromString(raw).attributes
        except DecodeError:  # the row just has no id
            attributes = []
        found = [kv.value.string_value for kv in attributes if kv.key == "request_id"]
        ids.append(found[0] if found and found[0] else None)
    columns = [pa.array(ids, pa.string()) if f.name == "request_id" else pa.nulls(len(ids), f.type) for f in usage]
    rows = pa.Table.from_arrays(columns, names=usage.names)
    reasons = [[UNREADABLE] for _ in records]
    return quarantine_table(rows, reasons, [reason for reason, _ in records], source, at, [raw for _, raw in records])


def part_name(table: pa.Table, salt: str = "") -> str:
    """A name derived from the rows' ids and reasons: the same bad records quarantined again
    (a sender retrying, an analytics run re-reading a part) replace their file."""
    digest = hashlib.sha256(salt.encode())
    for column in ("request_id", "reasons", "raw_record"):
        digest.update(repr(table.column(column).to_pylist()).encode())
    return f"part-q-{digest.hexdigest()[:24]}.parquet"


def write_quarantine(target: StorageTarget, table: pa.Table, salt: str = "") -> str:
    """Publish quarantine rows (one day's) through the storage target; returns the file's path.
    Raises OSError or ArrowException like any target write."""
    day = table.column(PARTITION_KEY)[0].as_py()
    return target.write(QUARANTINE_TABLE, day, part_name(table, salt), table, "zstd")
