# cython: language_level=3
"""Bounds-checked protobuf wire primitives shared by the native OTLP decoders.

Each returns the position after what it read, or -1 when the bytes end too early or are not
well-formed; none reads at or beyond `end`.
"""

from libc.stdint cimport uint64_t
from libc.string cimport memcpy


cdef enum:
    WT_VARINT = 0
    WT_I64 = 1
    WT_LEN = 2
    WT_SGROUP = 3
    WT_EGROUP = 4
    WT_I32 = 5
    MAX_DEPTH = 64


cdef inline Py_ssize_t _varint(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end, uint64_t* out) noexcept:
    """The position after a varint at `pos`, its value in `out`; -1 if truncated or over 10 bytes."""
    cdef uint64_t value = 0
    cdef int shift = 0
    cdef unsigned char byte
    while pos < end and shift < 70:
        byte = b[pos]
        pos += 1
        value |= (<uint64_t>(byte & 0x7F)) << shift
        if byte < 0x80:
            out[0] = value
            return pos
        shift += 7
    return -1


cdef inline Py_ssize_t _tag(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end, int* field, int* wire) noexcept:
    cdef uint64_t tag
    cdef Py_ssize_t after = _varint(b, pos, end, &tag)
    # (tag >> 32), not tag > 0xFFFFFFFF: Cython compares that literal as a Python int, per tag.
    if after < 0 or after - pos > 5 or (tag >> 32) != 0 or (tag >> 3) == 0:
        return -1
    field[0] = <int>(tag >> 3)
    wire[0] = <int>(tag & 7)
    return after


cdef inline Py_ssize_t _length(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end, Py_ssize_t* size) noexcept:
    """The position after a length prefix whose payload fits before `end`; -1 otherwise."""
    cdef uint64_t n
    cdef Py_ssize_t after = _varint(b, pos, end, &n)
    if after < 0 or n > <uint64_t>(end - after):
        return -1
    size[0] = <Py_ssize_t>n
    return after


cdef inline Py_ssize_t _skip(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end, int field, int wire, int depth) noexcept:
    """The position after a field's payload (its tag already read); -1 if malformed."""
    cdef uint64_t ignored
    cdef Py_ssize_t size
    cdef int inner_field = 0, inner_wire = 0
    if wire == WT_VARINT:
        return _varint(b, pos, end, &ignored)
    if wire == WT_I64:
        return pos + 8 if end - pos >= 8 else -1
    if wire == WT_I32:
        return pos + 4 if end - pos >= 4 else -1
    if wire == WT_LEN:
        pos = _length(b, pos, end, &size)
        return pos + size if pos >= 0 else -1
    if wire == WT_SGROUP:
        if depth >= MAX_DEPTH:
            return -1
        while True:
            pos = _tag(b, pos, end, &inner_field, &inner_wire)
            if pos < 0:
                return -1
            if inner_wire == WT_EGROUP:
                return pos if inner_field == field else -1
            pos = _skip(b, pos, end, inner_field, inner_wire, depth + 1)
            if pos < 0:
                return -1
    return -1  # an end-group with no start, or wire type 6 or 7


cdef inline bint _ascii(const unsigned char* b, Py_ssize_t start, Py_ssize_t end) noexcept:
    while start < end:
        if b[start] >= 0x80:
            return False
        start += 1
    return True


cdef inline object _hex(const unsigned char* b, Py_ssize_t start, Py_ssize_t end):
    cdef const char* digits = b"0123456789abcdef"
    cdef Py_ssize_t n = end - start
    cdef bytearray out = bytearray(2 * n)
    cdef unsigned char* o = out
    cdef Py_ssize_t k
    for k in range(n):
        o[2 * k] = digits[b[start + k] >> 4]
        o[2 * k + 1] = digits[b[start + k] & 15]
    return out.decode("ascii")


cdef inline bint _utf8(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end) noexcept:
    """Whether b[pos:end] is UTF-8 that Python's strict decoder accepts: no overlong forms, no
    surrogates, nothing past U+10FFFF. ASCII is checked eight bytes at a time first."""
    cdef unsigned long long word
    cdef unsigned char c, c1
    while end - pos >= 8:
        memcpy(&word, b + pos, 8)
        if word & 0x8080808080808080ULL:
            break
        pos += 8
    while pos < end:
        c = b[pos]
        if c < 0x80:
            pos += 1
            continue
        if c < 0xC2 or c > 0xF4:
            return False  # a continuation byte, an overlong two-byte lead, or past U+10FFFF
        if c < 0xE0:
            if end - pos < 2 or (b[pos + 1] & 0xC0) != 0x80:
                return False
            pos += 2
            continue
        c1 = b[pos + 1] if end - pos >= 2 else 0
        if c < 0xF0:
            if end - pos < 3 or (b[pos + 2] & 0xC0) != 0x80:
                return False
            # E0 needs A0..BF (else overlong); ED needs 80..9F (else a surrogate).
            if (c1 & 0xC0) != 0x80 or (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 > 0x9F):
                return False
            pos += 3
            continue
        if end - pos < 4 or (b[pos + 2] & 0xC0) != 0x80 or (b[pos + 3] & 0xC0) != 0x80:
            return False
        # F0 needs 90..BF (else overlong); F4 needs 80..8F (else past U+10FFFF).
        if (c1 & 0xC0) != 0x80 or (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 > 0x8F):
            return False
        pos += 4
    return True


cdef inline Py_ssize_t _short_length(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end, Py_ssize_t* size) noexcept:
    """`_length`, answering a one-byte length (nearly every attribute's) without the varint loop."""
    if pos < end and b[pos] < 0x80:
        if b[pos] > end - pos - 1:
            return -1
        size[0] = b[pos]
        return pos + 1
    return _length(b, pos, end, size)


cdef inline Py_ssize_t _short_tag(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end, int* field, int* wire) noexcept:
    """`_tag`, answering a one-byte tag (fields 1 to 15) without the varint loop."""
    if pos < end and 0x08 <= b[pos] < 0x80:
        field[0] = b[pos] >> 3
        wire[0] = b[pos] & 7
        return pos + 1
    return _tag(b, pos, end, field, wire)
