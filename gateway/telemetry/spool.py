"""The gateway's durable usage spool: append-only segment files under `<data_dir>/spool/`.

Each usage record is one frame, `<u32 length><u32 crc32><payload>`, where the payload is the
record's serialized OTLP LogRecord. `write` puts frames in the file at once (one `os.write`,
into the kernel's page cache: a killed process loses nothing), on the event loop's thread;
`sync` fdatasyncs everything written so far, in groups (group commit), from a worker thread,
so only a machine crash can lose the writes since the last sync. A reader cursor walks the
synced frames in order; the sender posts them and, once the collector acknowledges a batch,
`ack` moves the acknowledged cursor and deletes every segment that lies wholly behind it. The
acknowledged cursor is kept in a small file without fsync: losing it only means resending
records the collector drops as duplicates.

On open, a truncated or corrupt tail (a crash mid-append) is cut off with one log line; what
lies before it is resent. All methods are thread-safe; the lock is never held across file I/O
other than `write`'s own append, so `write` on the loop never waits for an fsync or a read.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from meterline.frames import HEADER_SIZE, frame, scan_frames
from meterline.layout import fsync_dir

log = logging.getLogger(__name__)

_SEGMENT_BYTES = 8 * 1024 * 1024
_WARN_LEVELS = (0.5, 0.8)
DEAD_LETTER = "dead-letter.jsonl"
"""Where records that cannot be delivered as they are wait for an operator (see `Spool.set_aside`)."""


def claim_directory(root: Path) -> tuple[Path, int]:
    """The first `root/<n>` nobody holds, and the fd of its lock (held until closed), so two
    gateways sharing a data dir never share a spool, and a restarted one finds its own (or an
    orphan) spool to resend."""
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1024):
        directory = root / str(n)
        directory.mkdir(exist_ok=True)
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return directory, fd
    raise RuntimeError(f"no free spool directory under {root}")


_READ_WINDOW = 1024 * 1024
"""Bytes `read` looks at per call: ~1,400 usage records, more than one export batch."""


class SpoolFull(Exception):
    """Appending would take the spool beyond its byte cap."""


@dataclass(frozen=True, order=True, slots=True)
class Cursor:
    segment: int
    offset: int


def _name(segment: int) -> str:
    return f"seg-{segment:012d}.log"


class Spool:
    def __init__(self, root: Path, max_bytes: int, segment_bytes: int = _SEGMENT_BYTES) -> None:
        self.root = root
        """`open` claims a directory `root/<n>` (see `claim_directory`)."""
        self.directory = root
        self.max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._sizes: dict[int, int] = {}
        """Written bytes of each live segment, oldest first."""
        self._total = 0
        """The sum of `_sizes` (kept, not summed per write)."""
        self._next_warning = max_bytes * _WARN_LEVELS[0]
        self._active = 0
        self._handle: int | None = None
        self._rotated: list[int] = []
        """Handles of full segments written since the last sync; `sync` fsyncs and closes them."""
        self._unsynced = 0
        """Records written since the last sync."""
        self._durable = Cursor(0, 0)
        """Everything before this is fsync'd (the whole of every older segment)."""
        self._lock_fd: int | None = None
        self._read = Cursor(0, 0)
        self._acked = Cursor(0, 0)
        self._warned = 0.0
        self.unacked_records = 0
        """Synced records not yet acknowledged by the collector."""
        self.dropped = 0

    # -- opening -----------------------------------------------------------------------------

    def open(self) -> int:
        """Scan the segments, cut a damaged tail, start a fresh active segment. Returns how many
        unacknowledged records are waiting to be resent."""
        self.directory, self._lock_fd = claim_directory(self.root)
        acked = self._load_ack()
        segments = sorted(int(p.name[4:16]) for p in self.directory.glob("seg-*.log"))
        for stale in self.directory.glob("ack.tmp"):
            stale.unlink()
        pending = 0
        for segment in segments:
            path = self.directory / _name(segment)
            data = path.read_bytes()
            frames, end = scan_frames(data)
            if end < len(data):
                log.warning(
                    "telemetry spool: %s has a truncated or corrupt tail at byte %d (%d bytes cut); "
                    "%d intact records kept",
                    path.name,
                    end,
                    len(data) - end,
                    len(frames),
                )
                os.truncate(path, end)
            if Cursor(segment, end) <= acked or not frames:
                path.unlink()
                continue
            self._sizes[segment] = end
            start = acked.offset if acked.segment == segment else 0
            pending += len(scan_frames(data[start:end])[0])
        self._total = sum(self._sizes.values())
        self._active = max([*self._sizes, acked.segment, 0]) + 1
        self._handle = self._create(self._active)
        self._sizes[self._active] = 0
        fsync_dir(self.directory)
        self._durable = Cursor(self._active, 0)
        self._acked = acked if acked.segment in self._sizes else Cursor(min(self._sizes), 0)
        self._read = self._acked
        self.unacked_records = pending
        if pending:
            log.warning("telemetry spool: %d unacknowledged usage records will be resent", pending)
        return pending

    def _load_ack(self) -> Cursor:
        try:
            segment, offset = (self.directory / "ack").read_text().split()
            return Cursor(int(segment), int(offset))
        except (OSError, ValueError):
            return Cursor(0, 0)

    def _create(self, segment: int) -> int:
        return os.open(self.directory / _name(segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def close(self) -> None:
        with self._lock:
            for handle in [*self._rotated, *([self._handle] if self._handle is not None else [])]:
                os.close(handle)
            self._rotated = []
            self._handle = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- writing -----------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        """Bytes not yet acknowledged by the collector (what the cap limits)."""
        with self._lock:
            return self._unacked_bytes()

    def _unacked_bytes(self) -> int:
        acked = self._acked.offset if self._acked.segment in self._sizes else 0
        return self._total - acked

    @property
    def unsynced_records(self) -> int:
        return self._unsynced

    def write(self, payloads: list[bytes]) -> None:
        """Put `payloads` in the active segment with one `os.write` (no fsync: see `sync`).
        Raises SpoolFull (nothing written) when the cap would be passed, OSError when the disk
        fails (the segment is cut back; nothing written)."""
        data = frame(payloads[0]) if len(payloads) == 1 else b"".join(map(frame, payloads))
        with self._lock:
            size = self._unacked_bytes()
            if size + len(data) > self.max_bytes:
                self.dropped += len(payloads)
                raise SpoolFull(f"spool at {size} of {self.max_bytes} bytes")
            assert self._handle is not None
            before = self._sizes[self._active]
            try:
                if os.write(self._handle, data) != len(data):
                    raise OSError(errno.ENOSPC, "short write to the usage spool")
            except OSError:
                os.ftruncate(self._handle, before)
                raise
            self._sizes[self._active] = before + len(data)
            self._total += len(data)
            self._unsynced += len(payloads)
            if size + len(data) >= self._next_warning:
                self._check_level()
            if self._sizes[self._active] >= self._segment_bytes:
                # The new segment's directory entry is fsync'd by the next `sync`, before the
                # full one is closed.
                try:
                    handle = self._create(self._active + 1)
                except OSError as exc:  # the frames are written; the next write tries again
                    log.error("telemetry spool: cannot start segment %d: %s", self._active + 1, exc)
                    return
                self._rotated.append(self._handle)
                self._handle = handle
                self._active += 1
                self._sizes[self._active] = 0

    def sync(self) -> int:
        """fdatasync everything written so far (one group commit); returns how many records it
        made durable. On OSError the same records are synced again by the next call."""
        with self._sync_lock:
            with self._lock:
                rotated, self._rotated = self._rotated, []
                handle, durable, count = self._handle, Cursor(self._active, self._sizes[self._active]), self._unsynced
                self._unsynced = 0
            assert handle is not None
            try:
                for old in rotated:
                    os.fdatasync(old)
                if rotated:
                    fsync_dir(self.directory)
                os.fdatasync(handle)
            except OSError:
                with self._lock:
                    self._rotated[:0] = rotated
                    self._unsynced += count
                raise
            for old in rotated:
                os.close(old)
            with self._lock:
                self._durable = durable
                self.unacked_records += count
            return count

    def append(self, payloads: list[bytes]) -> None:
        """`write` then `sync`: the payloads are durable on return."""
        self.write(payloads)
        self.sync()

    def _check_level(self) -> None:
        """(with the lock held)"""
        size = self._unacked_bytes()
        level = size / self.max_bytes
        for mark in _WARN_LEVELS:
            if level >= mark > self._warned:
                self._warned = mark
                log.warning(
                    "telemetry spool is %d%% full (%d of %d bytes): the collector is not acknowledging",
                    int(mark * 100),
                    size,
                    self.max_bytes,
                )
        if level < _WARN_LEVELS[0] / 2:
            self._warned = 0.0
        marks = [m for m in _WARN_LEVELS if m > self._warned]
        self._next_warning = self.max_bytes * marks[0] if marks else float("inf")

    # -- reading and acknowledging ---------------------------------------------------------------

    def _readable_end(self, segment: int) -> int:
        """Synced bytes of `segment` (call with the lock held)."""
        if segment < self._durable.segment:
            return self._sizes[segment]
        return self._durable.offset if segment == self._durable.segment else 0

    def read(self, max_records: int) -> tuple[list[bytes], Cursor]:
        """Up to `max_records` synced, unsent payloads and the cursor just past them."""
        with self._lock:
            cursor = self._read
        out: list[bytes] = []
        while len(out) < max_records:
            with self._lock:
                if cursor.segment not in self._sizes:
                    break
                end = self._readable_end(cursor.segment)
                later = [s for s in self._sizes if s > cursor.segment and s <= self._durable.segment]
            if cursor.offset < end:
                # A bounded window: with a large backlog, reading and checking every frame to
                # the segment's end on each call made draining it quadratic. A frame cut by
                # the window's edge is simply read next time; one larger than the window
                # gets a window of its own size. Synced bytes never change and only `ack`
                # (the same caller) deletes segments, so the file is read without the lock.
                window = min(end - cursor.offset, _READ_WINDOW)
                with open(self.directory / _name(cursor.segment), "rb") as handle:
                    handle.seek(cursor.offset)
                    data = handle.read(window)
                    frames, _ = scan_frames(data)
                    if not frames and window < end - cursor.offset:
                        data += handle.read(end - cursor.offset - window)
                        frames, _ = scan_frames(data)
                for payload in frames[: max_records - len(out)]:
                    out.append(payload)
                    cursor = Cursor(cursor.segment, cursor.offset + HEADER_SIZE + len(payload))
                continue
            if not later:
                break
            cursor = Cursor(min(later), 0)
        with self._lock:
            self._read = cursor
        return out, cursor

    def rewind(self) -> None:
        """Send again from the last acknowledged record (after a failed export)."""
        with self._lock:
            self._read = self._acked

    def ack(self, cursor: Cursor, count: int) -> None:
        """Everything before `cursor` is acknowledged: forget it and delete finished segments."""
        with self._lock:
            self._acked = cursor
            self.unacked_records = max(0, self.unacked_records - count)
            finished = [s for s in self._sizes if s < cursor.segment]
            for segment in finished:
                self._total -= self._sizes.pop(segment)
            self._check_level()
        for segment in finished:
            (self.directory / _name(segment)).unlink(missing_ok=True)
        temp = self.directory / "ack.tmp"
        temp.write_text(f"{cursor.segment} {cursor.offset}")
        os.replace(temp, self.directory / "ack")

    # -- setting aside -------------------------------------------------------------------------

    def set_aside(self, entry: dict[str, str]) -> None:
        """Append one JSON line to `dead-letter.jsonl` beside the segments (fsync'd): a record the
        collector refused on its own, or one that could not be encoded at all. Kept for an
        operator (and `meterline`) to inspect and resend; never read back by the gateway."""
        line = (json.dumps(entry, ensure_ascii=True, sort_keys=True) + "\n").encode()
        with open(self.directory / DEAD_LETTER, "ab") as handle:
            handle.write(line)
            handle.flush()
            os.fdatasync(handle.fileno())
