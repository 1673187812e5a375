# cython: language_level=3
"""A span's attributes as the JSON text `json.dumps(ensure_ascii=False, separators=(",", ":"))`
writes, straight from OTLP AnyValue wire bytes (the `attributes` column of `spans`).

`JsonText` is a growing buffer the decoder owns and resets per span; `write_scalar` and
`write_array` append one AnyValue and say whether it was plain. Anything they do not answer
(a kvlist, bytes, a non-finite double, UTF-8 that does not decode) returns "not plain", and the
span goes to the Python path, the reference, so nothing here has to reproduce a corner case.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.math cimport isfinite
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy, strlen

from collector._wire cimport _length, _utf8, _varint


cdef extern from "Python.h":
    char* PyOS_double_to_string(double val, char format_code, int precision, int flags, int* type) except NULL
    int Py_DTSF_ADD_DOT_0

# The AnyValue kinds `write_scalar` reports (and `write_array`'s caller records).
cdef enum:
    A_NONE = 0
    A_STR = 1
    A_BOOL = 2
    A_INT = 3
    A_DOUBLE = 4
    A_ARRAY = 5


cdef struct JsonText:
    unsigned char* data
    Py_ssize_t n
    Py_ssize_t cap


cdef inline int json_init(JsonText* t, Py_ssize_t cap) except -1:
    t.data = <unsigned char*>PyMem_Malloc(cap)
    if t.data == NULL:
        raise MemoryError()
    t.n = 0
    t.cap = cap
    return 0


cdef inline void json_free(JsonText* t) noexcept:
    PyMem_Free(t.data)
    t.data = NULL
    t.n = t.cap = 0


cdef inline int json_reserve(JsonText* t, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap
    cdef unsigned char* grown
    if t.n + extra <= t.cap:
        return 0
    cap = max(2 * t.cap, t.n + extra)
    grown = <unsigned char*>PyMem_Realloc(t.data, cap)
    if grown == NULL:
        raise MemoryError()
    t.data = grown
    t.cap = cap
    return 0


cdef inline int json_byte(JsonText* t, char c) except -1:
    """One ASCII byte (the JSON punctuation): no memcpy call for it."""
    json_reserve(t, 1)
    t.data[t.n] = <unsigned char>c
    t.n += 1
    return 0


cdef inline int json_raw(JsonText* t, const char* s, Py_ssize_t k) except -1:
    json_reserve(t, k)
    memcpy(t.data + t.n, s, k)
    t.n += k
    return 0


cdef inline bint _needs_escape(uint64_t w) noexcept:
    """Whether any byte of `w` is below 0x20, `"` or `\\` (exact: the word tricks of
    graphics.stanford.edu/~seander/bithacks.html, "has less" and "has value")."""
    cdef uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL
    cdef uint64_t q = w ^ (ones * 0x22), e = w ^ (ones * 0x5C)
    return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((e - ones) & ~e)) & highs != 0


cdef inline int json_string(JsonText* t, const unsigned char* s, Py_ssize_t k) except -1:
    """A JSON string: `"`, `\\` and control characters escaped as json.dumps escapes them."""
    cdef Py_ssize_t j = 0
    cdef unsigned char c
    cdef unsigned char* o
    cdef const char* hexd = b"0123456789abcdef"
    cdef uint64_t w
    json_reserve(t, 6 * k + 2)
    o = t.data + t.n
    o[0] = 34
    o += 1
    # Eight bytes at a time while none needs an escape (keys and most values), then byte by byte.
    while j + 8 <= k:
        memcpy(&w, s + j, 8)
        if _needs_escape(w):
            break
        memcpy(o, &w, 8)
        o += 8
        j += 8
    for j in range(j, k):
        c = s[j]
        if c == 34 or c == 92:
            o[0] = 92
            o[1] = c
            o += 2
        elif c >= 0x20:
            o[0] = c
            o += 1
        elif c == 10:
            o[0] = 92; o[1] = 110; o += 2
        elif c == 13:
            o[0] = 92; o[1] = 114; o += 2
        elif c == 9:
            o[0] = 92; o[1] = 116; o += 2
        elif c == 8:
            o[0] = 92; o[1] = 98; o += 2
        elif c == 12:
            o[0] = 92; o[1] = 102; o += 2
        else:
            o[0] = 92; o[1] = 117; o[2] = 48; o[3] = 48; o[4] = hexd[c >> 4]; o[5] = hexd[c & 15]
            o += 6
    o[0] = 34
    o += 1
    t.n = o - t.data
    return 0


cdef inline int _decimal(int64_t value, char* out) noexcept:
    """`value` in decimal, as `%lld` writes it (snprintf costs ~1k instructions a number); its length."""
    cdef char digits[20]
    cdef uint64_t rest = <uint64_t>value
    cdef int n = 0, k = 0
    if value < 0:
        rest = (<uint64_t>0) - rest  # also right for INT64_MIN
        out[0] = 45
        k = 1
    while True:
        digits[n] = <char>(48 + rest % 10)
        rest //= 10
        n += 1
        if rest == 0:
            break
    while n:
        n -= 1
        out[k] = digits[n]
        k += 1
    return k


cdef inline int write_scalar(JsonText* out, const unsigned char* b, Py_ssize_t val, Py_ssize_t end) except -2:
    """Writes an AnyValue holding one string, bool, int or finite double as JSON; its kind, or
    -1 (with partial output) for any other AnyValue."""
    cdef Py_ssize_t pos, size = 0
    cdef uint64_t v = 0
    cdef double d
    cdef char* text
    cdef char number[24]
    if end - val < 2:
        return -1
    if b[val] == 0x0A:
        pos = _length(b, val + 1, end, &size)
        if pos < 0 or pos + size != end or not _utf8(b, pos, end):
            return -1
        json_string(out, b + pos, size)
        return A_STR
    if b[val] == 0x10:
        pos = _varint(b, val + 1, end, &v)
        if pos != end or end - val != 2 or v > 1:
            return -1
        json_raw(out, b"true" if v else b"false", 4 if v else 5)
        return A_BOOL
    if b[val] == 0x18:
        pos = _varint(b, val + 1, end, &v)
        if pos != end or (end - val - 1 == 10 and b[end - 1] > 1):
            return -1
        json_raw(out, number, _decimal(<int64_t>v, number))
        return A_INT
    if b[val] == 0x21 and end - val == 9:
        memcpy(&d, b + val + 1, 8)
        if not isfinite(d):
            return -1
        text = PyOS_double_to_string(d, b'r', 0, Py_DTSF_ADD_DOT_0, NULL)
        try:
            json_raw(out, text, strlen(text))
        finally:
            PyMem_Free(text)
        return A_DOUBLE
    return -1


cdef inline bint write_array(JsonText* out, const unsigned char* b, Py_ssize_t val, Py_ssize_t end) except -1:
    """Writes an AnyValue holding an array of plain scalars (or empty values) as a JSON list;
    False for any other array."""
    cdef Py_ssize_t pos, size = 0, elem
    cdef bint first = True
    pos = _length(b, val + 1, end, &size)
    if pos < 0 or pos + size != end:
        return False
    json_byte(out, b"["[0])
    while pos < end:
        if b[pos] != 0x0A:
            return False
        elem = _length(b, pos + 1, end, &size)
        if elem < 0:
            return False
        if not first:
            json_byte(out, b","[0])
        first = False
        if size == 0:
            json_raw(out, b"null", 4)
        elif write_scalar(out, b, elem, elem + size) < 0:
            return False
        pos = elem + size
    json_byte(out, b"]"[0])
    return True
