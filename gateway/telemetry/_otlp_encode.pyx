# cython: language_level=3, boundscheck=False, wraparound=False
"""Repeated OTLP KeyValue fields written natively: the gateway's telemetry hot loop.

`otlp_wire.attributes` in C: the same bytes for every (key, value) pair (tests compare the two
on generated values). Exact str, int (within int64), float and bool values are written here;
any other value (a dict, a list, an enum, an int beyond int64) goes to `fallback`, which is
`otlp_wire.attribute`, so this module never has to know how those are spelled.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy


cdef inline Py_ssize_t _varint_size(uint64_t n) noexcept:
    cdef Py_ssize_t size = 1
    while n > 0x7F:
        n >>= 7
        size += 1
    return size


cdef inline unsigned char* _put_varint(unsigned char* o, uint64_t n) noexcept:
    while n > 0x7F:
        o[0] = <unsigned char>((n & 0x7F) | 0x80)
        o += 1
        n >>= 7
    o[0] = <unsigned char>n
    return o + 1


cdef class _Buffer:
    cdef bytearray data
    cdef Py_ssize_t n

    def __cinit__(self):
        self.data = bytearray(2048)
        self.n = 0

    cdef unsigned char* reserve(self, Py_ssize_t extra) except NULL:
        cdef Py_ssize_t size = len(self.data)
        if self.n + extra > size:
            self.data.extend(bytes(max(size, extra)))
        return (<unsigned char*>self.data) + self.n


def attributes(int number, values, fallback):
    """Repeated KeyValue field `number` (< 16) for the pairs whose value is not None."""
    cdef _Buffer out = _Buffer()  # per call: `fallback` runs Python, so another thread may be in here too
    cdef const char* key
    cdef const char* text = NULL
    cdef Py_ssize_t key_len, text_len = 0, any_len, kv_len
    cdef unsigned char* o
    cdef uint64_t u = 0
    cdef double d = 0
    cdef int kind
    cdef unsigned char tag = <unsigned char>(number << 3 | 2)
    if number < 1 or number > 15:
        raise ValueError("field number must be 1-15")
    for name, value in values:
        if value is None:
            continue
        vtype = type(value)
        if vtype is str:
            kind = 0
            text = PyUnicode_AsUTF8AndSize(value, &text_len)
            any_len = 1 + _varint_size(<uint64_t>text_len) + text_len
        elif vtype is int:
            try:
                u = <uint64_t>(<int64_t>value)
            except OverflowError:
                kind = -1
            else:
                kind = 1
                any_len = 1 + _varint_size(u)
        elif vtype is float:
            kind = 2
            d = value
            any_len = 9
        elif vtype is bool:
            kind = 3
            any_len = 2
        else:
            kind = -1
        if kind < 0:
            piece = fallback(number, name, value)
            o = out.reserve(len(piece))
            memcpy(o, <const char*>(<bytes>piece), len(piece))
            out.n += len(piece)
            continue
        key = PyUnicode_AsUTF8AndSize(name, &key_len)
        kv_len = 1 + _varint_size(<uint64_t>key_len) + key_len + 1 + _varint_size(<uint64_t>any_len) + any_len
        o = out.reserve(1 + _varint_size(<uint64_t>kv_len) + kv_len)
        o[0] = tag
        o = _put_varint(o + 1, <uint64_t>kv_len)
        o[0] = 0x0A
        o = _put_varint(o + 1, <uint64_t>key_len)
        memcpy(o, key, key_len)
        o += key_len
        o[0] = 0x12
        o = _put_varint(o + 1, <uint64_t>any_len)
        if kind == 0:
            o[0] = 0x0A
            o = _put_varint(o + 1, <uint64_t>text_len)
            memcpy(o, text, text_len)
            o += text_len
        elif kind == 1:
            o[0] = 0x18
            o = _put_varint(o + 1, u)
        elif kind == 2:
            o[0] = 0x21
            memcpy(o + 1, &d, 8)  # little-endian, as struct "<d"
            o += 9
        else:
            o[0] = 0x10
            o[1] = 1 if value else 0
            o += 2
        out.n = o - (<unsigned char*>out.data)
    return PyBytes_FromStringAndSize(<const char*>(<unsigned char*>out.data), out.n)
