"""The gateway's durable usage spool: append-only segment files under `<data_dir>/spool/`.

Each usage record is one frame, `<u32 length><u32 crc32><payload>`, where the payload is the
record's serialized OTLP LogRecord. Frames are appended in groups and fdatasync'd once per
group (group commit). A reader cursor walks the durable frames in order; the sender posts
them and, once the collector acknowledges a batch, `ack` moves the acknowledged cursor and
deletes every segment that lies wholly behind it. The acknowledged cursor is kept in a small
file without fsync: losing it only means resending records the collector drops as duplicates.

On open, a truncated or corrupt tail (a crash mid-append) is cut off with one log line; what
lies before it is resent. All methods are blocking and thread-safe; call them off the loop.
"""

from __future__ import annotations

import fcntl
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
        self._sizes: dict[int, int] = {}
        """Durable bytes of each live segment, oldest first."""
        self._active = 0
        self._handle: int | None = None
        self._lock_fd: int | None = None
        self._read = Cursor(0, 0)
        self._acked = Cursor(0, 0)
        self._warned = 0.0
        self.unacked_records = 0
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
        self._active = max([*self._sizes, acked.segment, 0]) + 1
        self._open_active()
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

    def _open_active(self) -> None:
        path = self.directory / _name(self._active)
        self._handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._sizes[self._active] = 0
        fsync_dir(self.directory)

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                os.close(self._handle)
                self._handle = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- writing -----------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        return sum(self._sizes.values())

    def append(self, payloads: list[bytes]) -> None:
        """Append and fdatasync `payloads` as one group. Raises SpoolFull (nothing written) when
        the cap would be passed, OSError when the disk fails (the segment is cut back)."""
        data = b"".join(frame(p) for p in payloads)
        with self._lock:
            if self.size_bytes + len(data) > self.max_bytes:
                self.dropped += len(payloads)
                raise SpoolFull(f"spool at {self.size_bytes} of {self.max_bytes} bytes")
            assert self._handle is not None
            before = self._sizes[self._active]
            try:
                os.write(self._handle, data)
                os.fdatasync(self._handle)
            except OSError:
                os.ftruncate(self._handle, before)
                raise
            self._sizes[self._active] = before + len(data)
            self.unacked_records += len(payloads)
            if self._sizes[self._active] >= self._segment_bytes:
                os.close(self._handle)
                self._active += 1
                self._open_active()
            self._check_level()

    def _check_level(self) -> None:
        level = self.size_bytes / self.max_bytes
        for mark in _WARN_LEVELS:
            if level >= mark > self._warned:
                self._warned = mark
                log.warning(
                    "telemetry spool is %d%% full (%d of %d bytes): the collector is not acknowledging",
                    int(mark * 100),
                    self.size_bytes,
                    self.max_bytes,
                )
        if level < _WARN_LEVELS[0] / 2:
            self._warned = 0.0

    # -- reading and acknowledging ---------------------------------------------------------------

    def read(self, max_records: int) -> tuple[list[bytes], Cursor]:
        """Up to `max_records` durable, unsent payloads and the cursor just past them."""
        with self._lock:
            cursor = self._read
            out: list[bytes] = []
            while len(out) < max_records and cursor.segment in self._sizes:
                end = self._sizes[cursor.segment]
                if cursor.offset < end:
                    # A bounded window: with a large backlog, reading and checking every frame to
                    # the segment's end on each call made draining it quadratic. A frame cut by
                    # the window's edge is simply read next time; one larger than the window
                    # gets a window of its own size.
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
                if cursor.segment == self._active:
                    break
                cursor = Cursor(min(s for s in self._sizes if s > cursor.segment), 0)
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
            for segment in [s for s in self._sizes if s < cursor.segment]:
                del self._sizes[segment]
                (self.directory / _name(segment)).unlink(missing_ok=True)
            temp = self.directory / "ack.tmp"
            temp.write_text(f"{cursor.segment} {cursor.offset}")
            os.replace(temp, self.directory / "ack")
            self._check_level()
