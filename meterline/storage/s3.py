"""An S3 prefix as the storage target, through pyarrow's S3 filesystem (no DuckDB extension).

`s3://bucket/prefix` holds the same hive layout as a local data dir. A PUT is atomic, so files
are written in place. S3 cannot rename, so compaction announces itself first: a small
`_compaction-<merged>.json` in the partition names the merged file and the files it replaces;
while that note exists and the merged file is listed, `partitions` hides the replaced files.
Then the merged file is written, the inputs deleted and the note removed. Any listing thus sees
the inputs or the merged file, never both and never neither; `recover` finishes or undoes a note
a crash left behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from meterline.layout import SPANS_TABLE, USAGE_TABLE
from meterline.storage.base import PartFile, WriteMerged, parse_partition, partition_name

log = logging.getLogger(__name__)

_NOTE_PREFIX = "_compaction-"
_STAGING = "_staging"


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"{url!r} is not an s3://bucket/prefix URL")
        return cls(parsed.netloc, parsed.path.strip("/"))

    @property
    def root(self) -> str:
        """The location as a pyarrow S3 path (`bucket/prefix`)."""
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket


def _endpoint_and_region(endpoint_url: str | None, region: str | None) -> tuple[str | None, str | None]:
    """The argument, else boto3's own variables (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL), which
    pyarrow does not read; the region likewise."""
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return endpoint, region


def s3_filesystem(endpoint_url: str | None = None, region: str | None = None) -> pafs.S3FileSystem:
    """Credentials come from the standard AWS chain; endpoint and region as `_endpoint_and_region`."""
    endpoint, region = _endpoint_and_region(endpoint_url, region)
    return pafs.S3FileSystem(endpoint_override=endpoint, region=region, allow_bucket_creation=False)


def object_store_options(endpoint_url: str | None = None, region: str | None = None) -> dict[str, str]:
    """The same endpoint and region for Polars' own object-store reader (`storage_options`), which
    reads a Parquet file's columns into a frame without the Arrow -> Polars conversion that
    costs ~2.5x the CPU through pyarrow. Credentials are left to its AWS chain; none go here."""
    endpoint, region = _endpoint_and_region(endpoint_url, region)
    options: dict[str, str] = {}
    if endpoint:
        options["aws_endpoint_url"] = endpoint
        if endpoint.startswith("http://"):
            options["aws_allow_http"] = "true"  # a local S3 (MinIO, moto); AWS itself is https
    if region:
        options["aws_region"] = region
    return options


def open_s3(location: S3Location, endpoint_url: str | None = None, region: str | None = None) -> S3Target:
    """A target at `location` whose readers and writers reach the same endpoint and region."""
    return S3Target(location, s3_filesystem(endpoint_url, region), object_store_options(endpoint_url, region))


class S3Target:
    def __init__(
        self, location: S3Location, filesystem: pafs.FileSystem, reader_options: dict[str, str] | None = None
    ) -> None:
        self.location = location
        self.filesystem: pafs.FileSystem = filesystem
        self.reader_options: dict[str, str] | None = reader_options
        """`storage_options` for Polars' reader at the filesystem's endpoint; None where unknown."""

    def describe(self) -> str:
        return f"s3://{self.location.root}"

    def _partition(self, table: str, day: dt.date) -> str:
        return f"{self.location.root}/{table}/{partition_name(day)}"

    def write(self, table: str, day: dt.date, name: str, data: pa.Table, compression: str) -> str:
        path = f"{self._partition(table, day)}/{name}"
        pq.write_table(data, path, filesystem=self.filesystem, compression=compression)
        return path

    def _listing(self, table: str) -> dict[dt.date, list[pafs.FileInfo]]:
        base = f"{self.location.root}/{table}"
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        out: dict[dt.date, list[pafs.FileInfo]] = {}
        for info in self.filesystem.get_file_info(selector):
            parts = info.path[len(base) + 1 :].split("/")
            day = parse_partition(parts[0]) if len(parts) == 2 else None
            if day is not None and info.type == pafs.FileType.File:
                out.setdefault(day, []).append(info)
        return out

    def _note(self, info: pafs.FileInfo) -> tuple[str, list[str]]:
        with self.filesystem.open_input_stream(info.path) as stream:
            note = json.loads(stream.read())
        return note["merged"], note["inputs"]

    def partitions(self, table: str) -> dict[dt.date, list[PartFile]]:
        out: dict[dt.date, list[PartFile]] = {}
        for day, infos in sorted(self._listing(table).items()):
            names = {i.base_name for i in infos}
            hidden: set[str] = set()
            for info in infos:
                if info.base_name.startswith(_NOTE_PREFIX):
                    merged, inputs = self._note(info)
                    if merged in names:
                        hidden.update(inputs)
            files = [
                PartFile(i.path, i.base_name, i.size, i.mtime_ns or 0)
                for i in sorted(infos, key=lambda i: i.base_name)
                if i.base_name.endswith(".parquet") and i.base_name not in hidden
            ]
            if files:
                out[day] = files
        return out

    def compact(self, table: str, day: dt.date, inputs: list[PartFile], merged: str, write: WriteMerged) -> None:
        # Written and checked outside the partition first: a failed write must never become visible.
        staged = f"{self.location.root}/{table}/{_STAGING}/{merged}"
        write(staged)
        folder = self._partition(table, day)
        note = f"{folder}/{_NOTE_PREFIX}{merged.removesuffix('.parquet')}.json"
        try:
            with self.filesystem.open_output_stream(note) as stream:
                stream.write(json.dumps({"merged": merged, "inputs": [f.name for f in inputs]}).encode())
            self.filesystem.copy_file(staged, f"{folder}/{merged}")  # a server-side copy: atomic
        finally:
            self.filesystem.delete_file(staged)
        self._finish(folder, note, [f.name for f in inputs])

    def _finish(self, folder: str, note: str, inputs: list[str]) -> None:
        for name in inputs:
            with contextlib.suppress(FileNotFoundError):  # a previous attempt got this far
                self.filesystem.delete_file(f"{folder}/{name}")
        self.filesystem.delete_file(note)

    def drop(self, table: str, day: dt.date) -> None:
        # S3 has no atomic folder removal: readers listing during the deletes see part of an
        # expired day for a moment, which retention (days past the window) can afford.
        self.filesystem.delete_dir(self._partition(table, day))

    def recover(self) -> None:
        for table in (USAGE_TABLE, SPANS_TABLE):
            for day, infos in self._listing(table).items():
                names = {i.base_name for i in infos}
                for info in infos:
                    if not info.base_name.startswith(_NOTE_PREFIX):
                        continue
                    merged, inputs = self._note(info)
                    folder = self._partition(table, day)
                    if merged in names:
                        log.info("collector: finishing an interrupted compaction in %s", folder)
                        self._finish(folder, info.path, inputs)
                    else:
                        log.info("collector: undoing an interrupted compaction in %s", folder)
                        self.filesystem.delete_file(info.path)
