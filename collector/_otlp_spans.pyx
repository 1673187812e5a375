# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Spans read straight from ExportTraceServiceRequest wire bytes into `spans` column lists.

The native half of `collector/native_spans.py`; `decode._span_values` (protobuf messages) is the
reference. Only plain spans are decoded here: the fields the gateway and SDKs write, attributes
that are strings, ints, bools or finite doubles under distinct keys, UTF-8 that decodes, a
known kind and status code. Any other span (events, links, arrays, a repeated key, an unknown
field ...) goes whole to `irregular`, which parses it with the protobuf runtime, so this module
never has to reproduce a protobuf or JSON corner case, only recognise one. Every read is
bounds-checked; a malformed body raises WireError.
"""

from cpython.unicode cimport PyUnicode_DecodeUTF8
from cpython.float cimport PyFloat_FromDouble
from libc.stdint cimport int64_t, uint64_t
from libc.stdio cimport snprintf
from libc.string cimport memcmp, memcpy, strlen
from libc.math cimport isfinite

from collector._wire cimport WT_I64, WT_LEN, WT_VARINT, _hex, _length, _skip, _tag, _varint

from collector._otlp_native import WireError

cdef extern from "Python.h":
    char* PyOS_double_to_string(double val, char format_code, int precision, int flags, int* type) except NULL
    void PyMem_Free(void* p)
    int Py_DTSF_ADD_DOT_0

cdef enum:
    NCOLS = 22
    MAX_ATTRS = 256
    # Promoted attributes, in `keys` order: str, str, str, str, int, int, float.
    NPROMOTED = 7

cdef enum:
    A_NONE = 0
    A_STR = 1
    A_BOOL = 2
    A_INT = 3
    A_DOUBLE = 4
    A_ARRAY = 5


cdef class _Json:
    """A growing UTF-8 buffer for one span's attributes object, as json.dumps(ensure_ascii=False,
    separators=(",", ":")) writes it."""

    cdef bytearray buf
    cdef Py_ssize_t n

    def __cinit__(self):
        self.buf = bytearray(1024)
        self.n = 0

    cdef void reset(self):
        self.n = 0

    cdef int reserve(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t size = len(self.buf)
        if self.n + extra > size:
            self.buf.extend(bytes(max(size, extra)))
        return 0

    cdef int raw(self, const char* s, Py_ssize_t k) except -1:
        self.reserve(k)
        memcpy((<unsigned char*>self.buf) + self.n, s, k)
        self.n += k
        return 0

    cdef int string(self, const unsigned char* s, Py_ssize_t k) except -1:
        """A JSON string: `"`, `\\` and control characters escaped as json.dumps escapes them."""
        cdef Py_ssize_t j
        cdef unsigned char c
        cdef unsigned char* o
        cdef const char* hexd = b"0123456789abcdef"
        self.reserve(6 * k + 2)
        o = (<unsigned char*>self.buf) + self.n
        o[0] = 34
        o += 1
        for j in range(k):
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
        self.n = o - (<unsigned char*>self.buf)
        return 0

    cdef str text(self):
        return PyUnicode_DecodeUTF8(<const char*>(<unsigned char*>self.buf), self.n, NULL)


cdef class SpanDecoder:
    """Decodes bodies with the promoted attribute keys and the enum names given once."""

    cdef tuple _keys
    cdef tuple _kinds
    cdef tuple _codes
    cdef _Json _json
    cdef Py_ssize_t _key_at[MAX_ATTRS]
    cdef Py_ssize_t _key_len[MAX_ATTRS]

    def __init__(self, tuple promoted_keys, tuple kind_names, tuple status_names):
        if len(promoted_keys) != NPROMOTED:
            raise ValueError("seven promoted attribute keys expected")
        self._keys = promoted_keys
        self._kinds = kind_names
        self._codes = status_names
        self._json = _Json()

    def decode(self, bytes body, object resource, object scope, object irregular):
        """Column lists for the spans in an ExportTraceServiceRequest's bytes.

        `resource(bytes)` gives (service_name, resource_json) for a ResourceSpans' resource bytes,
        `scope(bytes)` the scope name; `irregular(where, span_bytes, service, scope, resource_json)`
        gives the values of a span this decoder does not judge, or None when it is rejected."""
        cdef const unsigned char* b = body
        cdef Py_ssize_t end = len(body), pos = 0, size, res_end, scope_end, p2, item
        cdef int field, wire, r = 0, s, i
        cdef list columns = [[] for _ in range(NCOLS)]
        cdef list resource_parts, scope_parts, spans
        while pos < end:
            pos = _tag(b, pos, end, &field, &wire)
            if pos < 0:
                raise WireError("bad field tag in ExportTraceServiceRequest")
            if field != 1 or wire != WT_LEN:
                pos = _skip(b, pos, end, field, wire, 0)
                if pos < 0:
                    raise WireError("truncated or malformed field in ExportTraceServiceRequest")
                continue
            pos = _length(b, pos, end, &size)
            if pos < 0:
                raise WireError("resource_spans length past the end of the body")
            res_end = pos + size
            # Resource fields may come after the scopes and may repeat (they merge): read them first.
            resource_parts = []
            scopes = []
            while pos < res_end:
                pos = _tag(b, pos, res_end, &field, &wire)
                if pos < 0:
                    raise WireError("bad field tag in ResourceSpans")
                if wire == WT_LEN and (field == 1 or field == 2 or field == 3):
                    pos = _length(b, pos, res_end, &size)
                    if pos < 0:
                        raise WireError("ResourceSpans field length past its end")
                    if field == 1:
                        resource_parts.append(body[pos:pos + size])
                    elif field == 2:
                        scopes.append((pos, pos + size))
                    else:
                        _utf8(b, pos, size, "ResourceSpans.schema_url")
                    pos += size
                else:
                    pos = _skip(b, pos, res_end, field, wire, 0)
                    if pos < 0:
                        raise WireError("truncated or malformed field in ResourceSpans")
            service, resource_json = resource(b"".join(resource_parts))
            s = 0
            for scope_start, scope_end in scopes:
                scope_parts = []
                spans = []
                p2 = scope_start
                while p2 < scope_end:
                    p2 = _tag(b, p2, scope_end, &field, &wire)
                    if p2 < 0:
                        raise WireError("bad field tag in ScopeSpans")
                    if wire == WT_LEN and (field == 1 or field == 2 or field == 3):
                        p2 = _length(b, p2, scope_end, &size)
                        if p2 < 0:
                            raise WireError("ScopeSpans field length past its end")
                        if field == 1:
                            scope_parts.append(body[p2:p2 + size])
                        elif field == 2:
                            spans.append((p2, p2 + size))
                        else:
                            _utf8(b, p2, size, "ScopeSpans.schema_url")
                        p2 += size
                    else:
                        p2 = _skip(b, p2, scope_end, field, wire, 0)
                        if p2 < 0:
                            raise WireError("truncated or malformed field in ScopeSpans")
                scope_name = scope(b"".join(scope_parts))
                i = 0
                for span_start, span_end in spans:
                    if not self._span(b, span_start, span_end, columns, service, scope_name, resource_json):
                        where = f"resource_spans[{r}].scope_spans[{s}].spans[{i}]"
                        row = irregular(where, body[span_start:span_end], service, scope_name, resource_json)
                        if row is not None:
                            for k in range(NCOLS):
                                (<list>columns[k]).append(row[k])
                    i += 1
                s += 1
            r += 1
        return columns

    cdef bint _span(self, const unsigned char* b, Py_ssize_t start, Py_ssize_t end, list columns,
                    object service, object scope_name, object resource_json) except -1:
        """Appends a plain span's values; False (nothing appended) for any other span."""
        cdef Py_ssize_t pos = start, size, tid = -1, tid_len = 0, sid = -1, sid_len = 0, par = -1, par_len = 0
        cdef Py_ssize_t name = -1, name_len = 0, smsg = -1, smsg_len = 0, p2, st_end
        cdef int field = 0, wire = 0, nattrs = 0, k, j, code = 0, kind = 0
        cdef uint64_t v, t_start = 0, t_end = 0
        # Pass 1: the fields, each of the wire type protobuf expects, or the span is irregular.
        while pos < end:
            pos = _tag(b, pos, end, &field, &wire)
            if pos < 0:
                raise WireError("bad field tag in Span")
            if wire == WT_LEN and (field in (1, 2, 3, 4, 5, 9, 15)):
                pos = _length(b, pos, end, &size)
                if pos < 0:
                    raise WireError("Span field length past the end of the span")
                if field == 1:
                    tid, tid_len = pos, size
                elif field == 2:
                    sid, sid_len = pos, size
                elif field == 3:
                    if not _valid_utf8(b, pos, size):
                        return False
                elif field == 4:
                    par, par_len = pos, size
                elif field == 5:
                    if not _valid_utf8(b, pos, size):
                        return False
                    name, name_len = pos, size
                elif field == 9:
                    if nattrs >= MAX_ATTRS:
                        return False
                    self._key_at[nattrs] = pos
                    self._key_len[nattrs] = size  # the KeyValue's extent, for now
                    nattrs += 1
                if field != 15:
                    pos += size
                else:  # status: message (2) and code (3); repeated occurrences merge
                    p2 = pos
                    st_end = pos + size
                    while p2 < st_end:
                        p2 = _tag(b, p2, st_end, &field, &wire)
                        if p2 < 0:
                            raise WireError("bad field tag in Status")
                        if field == 2 and wire == WT_LEN:
                            p2 = _length(b, p2, st_end, &size)
                            if p2 < 0:
                                raise WireError("Status.message length past its end")
                            if not _valid_utf8(b, p2, size):
                                return False
                            smsg, smsg_len = p2, size
                            p2 += size
                        elif field == 3 and wire == WT_VARINT:
                            p2 = _varint(b, p2, st_end, &v)
                            if p2 < 0:
                                raise WireError("truncated Status.code")
                            if v > 2:
                                return False
                            code = <int>v
                        else:
                            return False
                    pos = st_end
            elif wire == WT_VARINT and (field == 6 or field == 10 or field == 12 or field == 14):
                pos = _varint(b, pos, end, &v)
                if pos < 0:
                    raise WireError("truncated varint in Span")
                if field == 6:
                    if v > 5:
                        return False
                    kind = <int>v
            elif wire == WT_I64 and (field == 7 or field == 8):
                if end - pos < 8:
                    raise WireError("truncated timestamp in Span")
                memcpy(&v, b + pos, 8)
                if field == 7:
                    t_start = v
                else:
                    t_end = v
                pos += 8
            elif field == 16 and wire == 5:  # flags, fixed32
                if end - pos < 4:
                    raise WireError("truncated flags in Span")
                pos += 4
            else:
                return False  # events, links, unknown fields, unexpected wire types
        if tid_len != 16 or sid_len != 8:
            return False  # the Python path rejects it with its reason
        if t_start >= (<uint64_t>1) << 63 or t_end >= (<uint64_t>1) << 63:
            return False
        attrs = self._attributes(b, nattrs)
        if attrs is None:
            return False
        attributes_json, promoted = attrs
        start_us = <int64_t>(t_start // 1000)
        values = (
            _hex(b, tid, tid + 16),
            _hex(b, sid, sid + 8),
            PyUnicode_DecodeUTF8(<const char*>(b + name), name_len, NULL) if name >= 0 else "",
            start_us,
            <int64_t>(t_end // 1000),
            PyFloat_FromDouble(<double>(<int64_t>t_end - <int64_t>t_start) / 1e6),
            start_us // 86_400_000_000,
            _hex(b, par, par + par_len) if par >= 0 and par_len else None,
            self._kinds[kind],
            service,
            scope_name,
            self._codes[code],
            PyUnicode_DecodeUTF8(<const char*>(b + smsg), smsg_len, NULL) if smsg_len else None,
        ) + promoted + (attributes_json, resource_json)
        for k in range(NCOLS):
            (<list>columns[k]).append(values[k])
        return True

    cdef object _attributes(self, const unsigned char* b, int nattrs):
        """(attributes JSON, the seven promoted values) or None when an attribute is not plain."""
        cdef Py_ssize_t kv, kv_end, pos, key, key_len, val, val_len
        cdef int k, j, p
        cdef int kinds[MAX_ATTRS]
        cdef _Json out = self._json
        cdef list promoted = [None] * NPROMOTED
        out.reset()
        out.raw(b"{", 1)
        for k in range(nattrs):
            kv = self._key_at[k]
            kv_end = kv + self._key_len[k]
            # 0x0a <key> 0x12 <AnyValue>, nothing else
            if kv >= kv_end or b[kv] != 0x0A:
                return None
            pos = _length(b, kv + 1, kv_end, &key_len)
            if pos < 0 or kv_end - pos - key_len < 1 or b[pos + key_len] != 0x12:
                return None
            key = pos
            pos = _length(b, pos + key_len + 1, kv_end, &val_len)
            if pos < 0 or pos + val_len != kv_end or val_len < 2 or not _valid_utf8(b, key, key_len):
                return None
            for j in range(k):  # a repeated key: a dict keeps the first place and the last value
                if self._key_len[j] == key_len and memcmp(b + self._key_at[j], b + key, key_len) == 0:
                    return None
            self._key_at[k] = key
            self._key_len[k] = key_len
            val = pos
            if k:
                out.raw(b",", 1)
            out.string(b + key, key_len)
            out.raw(b":", 1)
            if b[val] == 0x2A:  # array_value
                if not _array(out, b, val, kv_end):
                    return None
                kinds[k] = A_ARRAY
            else:
                kinds[k] = _scalar(out, b, val, kv_end)
                if kinds[k] < 0:
                    return None
            for p in range(NPROMOTED):
                key_bytes = <bytes>self._keys[p]
                if len(key_bytes) == key_len and memcmp(<const char*>key_bytes, b + key, key_len) == 0:
                    promoted[p] = self._promote(p, kinds[k], b, val, kv_end)
                    if promoted[p] is _IRREGULAR:
                        return None
                    break
        out.raw(b"}", 1)
        return out.text(), tuple(promoted)

    cdef object _promote(self, int p, int kind, const unsigned char* b, Py_ssize_t val, Py_ssize_t end):
        """The value `decode._str/_int/_float` would give for promoted attribute `p`."""
        cdef uint64_t v = 0
        cdef double d
        cdef Py_ssize_t pos, size = 0
        if p < 4:
            if kind != A_STR:
                return None
            pos = _length(b, val + 1, end, &size)
            return PyUnicode_DecodeUTF8(<const char*>(b + pos), size, NULL)
        if kind == A_INT:
            _varint(b, val + 1, end, &v)
            return <int64_t>v if p < 6 else <double>(<int64_t>v)
        if kind == A_DOUBLE:
            if p < 6:
                return _IRREGULAR  # a whole double becomes an int; leave that to Python
            memcpy(&d, b + val + 1, 8)
            return d
        return None


cdef int _scalar(_Json out, const unsigned char* b, Py_ssize_t val, Py_ssize_t end) except -2:
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
        if pos < 0 or pos + size != end or not _valid_utf8(b, pos, size):
            return -1
        out.string(b + pos, size)
        return A_STR
    if b[val] == 0x10:
        pos = _varint(b, val + 1, end, &v)
        if pos != end or end - val != 2 or v > 1:
            return -1
        out.raw(b"true" if v else b"false", 4 if v else 5)
        return A_BOOL
    if b[val] == 0x18:
        pos = _varint(b, val + 1, end, &v)
        if pos != end or (end - val - 1 == 10 and b[end - 1] > 1):
            return -1
        out.raw(number, snprintf(number, 24, "%lld", <long long>(<int64_t>v)))
        return A_INT
    if b[val] == 0x21 and end - val == 9:
        memcpy(&d, b + val + 1, 8)
        if not isfinite(d):
            return -1
        text = PyOS_double_to_string(d, b'r', 0, Py_DTSF_ADD_DOT_0, NULL)
        try:
            out.raw(text, strlen(text))
        finally:
            PyMem_Free(text)
        return A_DOUBLE
    return -1


cdef bint _array(_Json out, const unsigned char* b, Py_ssize_t val, Py_ssize_t end) except -1:
    """Writes an AnyValue holding an array of plain scalars (or empty values) as a JSON list;
    False for any other array."""
    cdef Py_ssize_t pos, size = 0, elem
    cdef bint first = True
    pos = _length(b, val + 1, end, &size)
    if pos < 0 or pos + size != end:
        return False
    out.raw(b"[", 1)
    while pos < end:
        if b[pos] != 0x0A:
            return False
        elem = _length(b, pos + 1, end, &size)
        if elem < 0:
            return False
        if not first:
            out.raw(b",", 1)
        first = False
        if size == 0:
            out.raw(b"null", 4)
        elif _scalar(out, b, elem, elem + size) < 0:
            return False
        pos = elem + size
    out.raw(b"]", 1)
    return True


_IRREGULAR = object()


cdef bint _valid_utf8(const unsigned char* b, Py_ssize_t start, Py_ssize_t size) except -1:
    cdef Py_ssize_t k
    if start < 0 or size == 0:
        return True
    for k in range(start, start + size):
        if b[k] >= 0x80:
            break
    else:
        return True
    try:
        PyUnicode_DecodeUTF8(<const char*>(b + start), size, NULL)
    except UnicodeDecodeError:
        return False
    return True


cdef int _utf8(const unsigned char* b, Py_ssize_t start, Py_ssize_t size, str what) except -1:
    if not _valid_utf8(b, start, size):
        raise WireError(f"{what} is not UTF-8")
    return 0
