# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Spans read straight from ExportTraceServiceRequest wire bytes into `spans` Arrow buffers.

The native half of `collector/native_spans.py`; `decode._span_values` (protobuf messages) is the
reference. Only plain spans are decoded here: the fields the gateway and SDKs write, attributes
that are strings, ints, bools or finite doubles under distinct keys, UTF-8 that decodes, a
known kind and status code. Any other span (events, links, arrays, a repeated key, an unknown
field ...) goes whole to `irregular`, which parses it with the protobuf runtime, so this module
never has to reproduce a protobuf or JSON corner case, only recognise one. Every read is
bounds-checked; a malformed body raises WireError.

Values go straight into per-column buffers in Arrow's layout (`_arrow_columns.pxd`), so no Python
object is made per value; `native_spans` imports them as one record batch through the Arrow C
data interface. A span is appended only once it is known to be plain, so nothing is ever cut back.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memcmp, memcpy

from collector._arrow_columns cimport (
    K_DATE, K_DOUBLE, K_INT, K_STR, Col, _add_f64, _add_hex, _add_i32, _add_i64, _add_null, _add_object,
    _add_str, _col_free, _col_init, _export_struct,
)
from collector._attribute_json cimport (
    A_ARRAY, A_BOOL, A_DOUBLE, A_INT, A_NONE, A_STR, JsonText, json_byte, json_free, json_init, json_string,
    write_array, write_scalar,
)
from collector._wire cimport WT_I64, WT_LEN, WT_VARINT, _length, _skip, _tag, _utf8, _varint

from collector._otlp_native cimport ExportedColumns
from collector._otlp_native import WireError

cdef enum:
    NCOLS = 22
    MAX_ATTRS = 256
    # Promoted attributes, in `keys` order: str, str, str, str, int, int, float.
    NPROMOTED = 7

# The `spans` schema's column kinds, in its order (meterline.span_row.SpanRow); times are int64
# microseconds and the date int32 days, which is Arrow's layout of timestamp[us] and date32.
cdef int[NCOLS] _KINDS = [
    K_STR, K_STR, K_STR, K_INT, K_INT, K_DOUBLE, K_DATE, K_STR, K_STR, K_STR, K_STR,
    K_STR, K_STR, K_STR, K_STR, K_STR, K_STR, K_INT, K_INT, K_DOUBLE, K_STR, K_STR,
]


def column_kinds():
    """The column kinds (K_* of `_arrow_columns.pxd`), for native_spans to check against the schema."""
    return tuple(_KINDS[k] for k in range(NCOLS))


@cython.final
cdef class _Batch:
    """One decode's columns; a fresh one per body, so concurrent decodes share nothing."""

    cdef Col cols[NCOLS]
    cdef Py_ssize_t rows

    def __cinit__(self, Py_ssize_t rows):
        cdef int k
        for k in range(NCOLS):
            _col_init(&self.cols[k], _KINDS[k], rows)

    def __dealloc__(self):
        cdef int k
        for k in range(NCOLS):
            _col_free(&self.cols[k])


cdef inline int _add_text(Col* col, object text) except -1:
    """A str (its UTF-8, cached on the object) or None; for the per-resource and per-scope values."""
    cdef Py_ssize_t size
    cdef const char* data
    if text is None:
        return _add_null(col)
    data = PyUnicode_AsUTF8AndSize(text, &size)
    return _add_str(col, data, size)


cdef inline int _add_bytes(Col* col, bytes text) except -1:
    return _add_str(col, PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text))


@cython.final
cdef class SpanDecoder:
    """Decodes bodies with the promoted attribute keys and the enum names given once."""

    cdef tuple _keys
    cdef tuple _kinds
    cdef tuple _codes
    cdef JsonText _json
    cdef Py_ssize_t _key_at[MAX_ATTRS]
    cdef Py_ssize_t _key_len[MAX_ATTRS]
    # The promoted attributes of the span being read: the kind (A_*) and AnyValue extent of each.
    cdef const char* _key_ptr[NPROMOTED]  # into self._keys' bytes, which this object keeps
    cdef Py_ssize_t _key_size[NPROMOTED]
    cdef int _p_kind[NPROMOTED]
    cdef Py_ssize_t _p_val[NPROMOTED]
    cdef Py_ssize_t _p_end[NPROMOTED]

    def __cinit__(self, *args):
        json_init(&self._json, 1024)

    def __dealloc__(self):
        json_free(&self._json)

    def __init__(self, tuple promoted_keys, tuple kind_names, tuple status_names):
        if len(promoted_keys) != NPROMOTED:
            raise ValueError("seven promoted attribute keys expected")
        self._keys = promoted_keys
        for p in range(NPROMOTED):
            self._key_ptr[p] = <bytes>promoted_keys[p]
            self._key_size[p] = len(<bytes>promoted_keys[p])
        self._kinds = tuple(name.encode() for name in kind_names)
        self._codes = tuple(name.encode() for name in status_names)

    def decode(self, bytes body, object resource, object scope, object irregular):
        """The spans in an ExportTraceServiceRequest's bytes, as `ExportedColumns` in `spans` order.

        `resource(bytes)` gives (service_name, resource_json) for a ResourceSpans' resource bytes,
        `scope(bytes)` the scope name; `irregular(where, span_bytes, service, scope, resource_json)`
        gives the values of a span this decoder does not judge, or None when it is rejected."""
        cdef const unsigned char* b = body
        cdef Py_ssize_t end = len(body), pos = 0, size, res_end, scope_end, p2, item
        cdef int field, wire, r = 0, s, i, k
        # About one span per 256 bytes to start with; buffers grow as needed and are trimmed on export.
        cdef _Batch out = _Batch(end // 256 + 1)
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
                        _require_utf8(b, pos, size, "ResourceSpans.schema_url")
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
                            _require_utf8(b, p2, size, "ScopeSpans.schema_url")
                        p2 += size
                    else:
                        p2 = _skip(b, p2, scope_end, field, wire, 0)
                        if p2 < 0:
                            raise WireError("truncated or malformed field in ScopeSpans")
                scope_name = scope(b"".join(scope_parts))
                i = 0
                for span_start, span_end in spans:
                    if not self._span(b, span_start, span_end, out, service, scope_name, resource_json):
                        where = f"resource_spans[{r}].scope_spans[{s}].spans[{i}]"
                        row = irregular(where, body[span_start:span_end], service, scope_name, resource_json)
                        if row is not None:
                            for k in range(NCOLS):
                                _add_object(&out.cols[k], row[k])
                            out.rows += 1
                    i += 1
                s += 1
            r += 1
        cdef ExportedColumns exported = ExportedColumns()
        _export_struct(&exported.array, out.rows, out.cols, NCOLS)
        return exported

    cdef bint _span(self, const unsigned char* b, Py_ssize_t start, Py_ssize_t end, _Batch out,
                    object service, object scope_name, object resource_json) except -1:
        """Appends a plain span's values; False (nothing appended) for any other span."""
        cdef Py_ssize_t pos = start, size, tid = -1, tid_len = 0, sid = -1, sid_len = 0, par = -1, par_len = 0
        cdef Py_ssize_t name = -1, name_len = 0, smsg = -1, smsg_len = 0, p2, st_end
        cdef int field = 0, wire = 0, nattrs = 0, k, j, code = 0, kind = 0
        cdef uint64_t v, t_start = 0, t_end = 0
        cdef int64_t start_us
        cdef Col* cols = out.cols
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
                    if not _utf8(b, pos, pos + size):
                        return False
                elif field == 4:
                    par, par_len = pos, size
                elif field == 5:
                    if not _utf8(b, pos, pos + size):
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
                            if not _utf8(b, p2, p2 + size):
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
        if not self._attributes(b, nattrs):
            return False
        # Plain: every value goes in now, in column order.
        start_us = <int64_t>(t_start // 1000)
        _add_hex(&cols[0], b, tid, tid + 16)
        _add_hex(&cols[1], b, sid, sid + 8)
        _add_str(&cols[2], <const char*>(b + name), name_len if name >= 0 else 0)
        _add_i64(&cols[3], start_us)
        _add_i64(&cols[4], <int64_t>(t_end // 1000))
        _add_f64(&cols[5], <double>(<int64_t>t_end - <int64_t>t_start) / 1e6)
        _add_i32(&cols[6], <int32_t>(start_us // 86_400_000_000))
        if par >= 0 and par_len:
            _add_hex(&cols[7], b, par, par + par_len)
        else:
            _add_null(&cols[7])
        _add_bytes(&cols[8], <bytes>self._kinds[kind])
        _add_text(&cols[9], service)
        _add_text(&cols[10], scope_name)
        _add_bytes(&cols[11], <bytes>self._codes[code])
        if smsg_len:
            _add_str(&cols[12], <const char*>(b + smsg), smsg_len)
        else:
            _add_null(&cols[12])
        for k in range(NPROMOTED):
            self._add_promoted(&cols[13 + k], k, b)
        _add_str(&cols[20], <const char*>self._json.data, self._json.n)
        _add_text(&cols[21], resource_json)
        out.rows += 1
        return True

    cdef bint _attributes(self, const unsigned char* b, int nattrs) except -1:
        """Writes the attributes JSON (`self._json`) and notes the promoted attributes; False
        when an attribute is not plain."""
        cdef Py_ssize_t kv, kv_end, pos, key, key_len, val, val_len
        cdef int k, j, p
        cdef int kinds[MAX_ATTRS]
        cdef JsonText* out = &self._json
        for p in range(NPROMOTED):
            self._p_kind[p] = A_NONE
        out.n = 0
        json_byte(out, b"{"[0])
        for k in range(nattrs):
            kv = self._key_at[k]
            kv_end = kv + self._key_len[k]
            # 0x0a <key> 0x12 <AnyValue>, nothing else
            if kv >= kv_end or b[kv] != 0x0A:
                return False
            pos = _length(b, kv + 1, kv_end, &key_len)
            if pos < 0 or kv_end - pos - key_len < 1 or b[pos + key_len] != 0x12:
                return False
            key = pos
            pos = _length(b, pos + key_len + 1, kv_end, &val_len)
            if pos < 0 or pos + val_len != kv_end or val_len < 2 or not _utf8(b, key, key + key_len):
                return False
            for j in range(k):  # a repeated key: a dict keeps the first place and the last value
                if self._key_len[j] == key_len and memcmp(b + self._key_at[j], b + key, key_len) == 0:
                    return False
            self._key_at[k] = key
            self._key_len[k] = key_len
            val = pos
            if k:
                json_byte(out, b","[0])
            json_string(out, b + key, key_len)
            json_byte(out, b":"[0])
            if b[val] == 0x2A:  # array_value
                if not write_array(out, b, val, kv_end):
                    return False
                kinds[k] = A_ARRAY
            else:
                kinds[k] = write_scalar(out, b, val, kv_end)
                if kinds[k] < 0:
                    return False
            for p in range(NPROMOTED):
                if self._key_size[p] == key_len and memcmp(self._key_ptr[p], b + key, key_len) == 0:
                    if (p == 4 or p == 5) and kinds[k] == A_DOUBLE:
                        return False  # a whole double becomes an int; leave that to Python
                    self._p_kind[p] = kinds[k]
                    self._p_val[p] = val
                    self._p_end[p] = kv_end
                    break
        json_byte(out, b"}"[0])
        return True

    cdef int _add_promoted(self, Col* col, int p, const unsigned char* b) except -1:
        """The value `decode._str/_int/_float` gives for promoted attribute `p`, into `col`."""
        cdef uint64_t v = 0
        cdef double d
        cdef Py_ssize_t pos, size = 0, val = self._p_val[p], end = self._p_end[p]
        cdef int kind = self._p_kind[p]
        if p < 4:
            if kind != A_STR:
                return _add_null(col)
            pos = _length(b, val + 1, end, &size)
            return _add_str(col, <const char*>(b + pos), size)
        if kind == A_INT:
            _varint(b, val + 1, end, &v)
            if p < 6:
                return _add_i64(col, <int64_t>v)
            return _add_f64(col, <double>(<int64_t>v))
        if kind == A_DOUBLE:  # p == 6: the others were left to Python
            memcpy(&d, b + val + 1, 8)
            return _add_f64(col, d)
        return _add_null(col)


cdef int _require_utf8(const unsigned char* b, Py_ssize_t start, Py_ssize_t size, str what) except -1:
    if not _utf8(b, start, start + size):
        raise WireError(f"{what} is not UTF-8")
    return 0
