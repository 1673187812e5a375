"""Length- and checksum-framed records in append-only files (the gateway's spool, the
collector's WAL): `<u32 length><u32 crc32><payload>`, little-endian.

A reader takes the intact frames at the start of a file and stops at the first short, empty or
corrupt one, which is where a crash cut the last append.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

_HEADER = struct.Struct("<II")
HEADER_SIZE = _HEADER.size


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def scan_frames(data: bytes, valid: Callable[[bytes], bool] | None = None) -> tuple[list[bytes], int]:
    """The intact frames' payloads at the start of `data` and the offset where they end; `valid`
    may reject a payload whose checksum holds but whose content does not."""
    frames: list[bytes] = []
    offset = 0
    while offset + HEADER_SIZE <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        end = offset + HEADER_SIZE + length
        if length == 0 or end > len(data):
            break
        payload = data[offset + HEADER_SIZE : end]
        if zlib.crc32(payload) != crc or (valid is not None and not valid(payload)):
            break
        frames.append(payload)
        offset = end
    return frames, offset
