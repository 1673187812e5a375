# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Usage log records read straight from ExportLogsServiceRequest wire bytes into Arrow buffers.

The native half of `collector/native_logs.py`; the pure-Python path (raw_logs.py +
usage_columns.py) is the reference, and tests hold the two to identical tables and errors.

Only the regular shape is decoded here: a KeyValue written as key then value, an AnyValue
holding the one kind its column expects, UTF-8 that validates. Every other attribute's bytes go
to `slow_attribute` (the Python decoder and its cache), and every record that is not plainly
valid goes whole to `irregular`, so this module never has to reproduce an error message or a
protobuf corner case: it only has to know when not to answer. Every read is bounds-checked
against the end of the enclosing field; a malformed body raises WireError, never reads past it.

Values go straight into per-column buffers in Arrow's layout (`_arrow_columns.pxd`), so no
Python object is made per value; `native_logs` imports them as one record batch through the
Arrow C data interface.
A record is appended column by column as its attributes come; a repeated attribute replaces its
column's value, and an irregular record is cut back off every column before `irregular` answers.
"""

cimport cython
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcmp, memcpy


from collector._arrow_columns cimport (
    K_BOOL, K_DATE, K_DOUBLE, K_INT, K_STR, K_TAGS, Col, _add_bool, _add_f64, _add_hex, _add_i32,
    _add_i64, _add_null, _add_object, _add_str, _begin, _close_map, _col_free, _col_init,
    _export_struct, _truncate,
)
from collector._wire cimport WT_LEN, _length, _short_length, _short_tag, _skip, _tag, _utf8, _varint


class WireError(ValueError):
    """The bytes are not well-formed protobuf (truncated, a length past the end, a bad tag)."""


cdef enum:
    MAX_COLUMNS = 128
    DEFER = 2  # `_attribute`: an attribute only the Python decoder answers

DEF_UNUSED = -1
DEF_IRREGULAR = -2

cdef const char* _USAGE = b"meterline.usage"


def valid_utf8(bytes data):
    """Whether the native validator accepts `data` (tests hold it to Python's decoder)."""
    return _utf8(data, 0, len(data))


# -- the batch's columns ----------------------------------------------------------------------

@cython.final
cdef class _Batch:
    """One decode's columns; a fresh one per body, so concurrent decodes share nothing."""

    cdef Col* cols
    cdef int ncols
    cdef Py_ssize_t rows

    def __cinit__(self, tuple kinds, Py_ssize_t rows):
        cdef int k
        self.cols = <Col*>calloc(len(kinds), sizeof(Col))
        if self.cols == NULL:
            raise MemoryError()
        self.ncols = len(kinds)
        for k in range(self.ncols):
            _col_init(&self.cols[k], kinds[k], rows)

    def __dealloc__(self):
        cdef int k
        if self.cols != NULL:
            for k in range(self.ncols):
                _col_free(&self.cols[k])
            free(self.cols)

    cdef inline Col* replace(self, int k) except NULL:
        """Column `k`, its value for the current record (if any) dropped: the last attribute wins."""
        _truncate(&self.cols[k], self.rows)
        return &self.cols[k]

    cdef list strings(self, int k):
        """Column `k`'s values as Python str (a string column without nulls)."""
        cdef Col* col = &self.cols[k]
        cdef const int32_t* offsets = <const int32_t*>col.offsets.data
        cdef Py_ssize_t n
        return [
            PyUnicode_DecodeUTF8(col.values.data + offsets[n], offsets[n + 1] - offsets[n], NULL)
            for n in range(col.length)
        ]


@cython.final
cdef class ExportedColumns:
    """The decoded columns as an Arrow C data interface struct array, until pyarrow takes them
    (its `array` is declared in _otlp_native.pxd, for the span decoder too)."""

    def __dealloc__(self):
        if self.array.release != NULL:  # never imported
            self.array.release(&self.array)

    @property
    def address(self):
        """The ArrowArray's address, for `pyarrow.RecordBatch._import_from_c`."""
        return <Py_ssize_t>&self.array


cdef inline bint _same(const unsigned char* a, const unsigned char* b, Py_ssize_t n) noexcept:
    """memcmp(a, b, n) == 0 for attribute keys (~10 bytes): inline loads instead of a libc call."""
    cdef uint64_t x, y
    while n >= 8:
        memcpy(&x, a, 8)
        memcpy(&y, b, 8)
        if x != y:
            return False
        a += 8
        b += 8
        n -= 8
    while n > 0:
        if a[0] != b[0]:
            return False
        a += 1
        b += 1
        n -= 1
    return True


cdef inline int _digits(const unsigned char* b, Py_ssize_t start, int count) noexcept:
    cdef int value = 0
    cdef int k
    for k in range(count):
        if b[start + k] < 48 or b[start + k] > 57:
            return -1
        value = value * 10 + (b[start + k] - 48)
    return value


cdef bint _iso_days(const unsigned char* b, Py_ssize_t start, Py_ssize_t end, int64_t* days) noexcept:
    """Days since 1970-01-01 for exactly YYYY-MM-DD naming a real day; False for anything else
    (which `date.fromisoformat` then judges)."""
    cdef int year, month, day, last
    cdef int64_t y, era, yoe, doy, doe, m
    if end - start != 10 or b[start + 4] != 45 or b[start + 7] != 45:
        return False
    year = _digits(b, start, 4)
    month = _digits(b, start + 5, 2)
    day = _digits(b, start + 8, 2)
    if year < 1 or month < 1 or month > 12 or day < 1:
        return False
    if month == 2:
        last = 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
    elif month == 4 or month == 6 or month == 9 or month == 11:
        last = 30
    else:
        last = 31
    if day > last:
        return False
    # Howard Hinnant's days_from_civil.
    y = year - (1 if month <= 2 else 0)
    era = y // 400
    yoe = y - era * 400
    m = month + (-3 if month > 2 else 9)
    doy = (153 * m + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days[0] = era * 146097 + doe - 719468
    return True


@cython.final
cdef class UsageDecoder:
    """Decodes bodies against one column layout (built once by `native_logs`)."""

    cdef object _keys
    cdef const unsigned char* _key_ptr[MAX_COLUMNS]
    cdef Py_ssize_t _key_len[MAX_COLUMNS]
    cdef int _kinds[MAX_COLUMNS]
    cdef tuple _kind_tuple
    cdef int _ncols
    cdef int _next
    cdef tuple _fills
    cdef object _required
    cdef int _request, _trace, _span
    cdef object _slow

    def __init__(self, tuple keys, tuple kinds, tuple fills, object required,
                 int request_index, int trace_index, int span_index, object slow_attribute):
        cdef int k
        if not (len(keys) == len(kinds) == len(fills)) or len(keys) > MAX_COLUMNS:
            raise ValueError("keys, kinds and fills must be equally long, at most 128")
        if kinds[request_index] != K_STR:
            raise ValueError("the request id column must be a string column")
        self._keys = keys
        self._ncols = len(keys)
        for k in range(self._ncols):
            self._key_ptr[k] = <const unsigned char*>(<bytes>keys[k])
            self._key_len[k] = len(<bytes>keys[k])
            self._kinds[k] = kinds[k]
        self._kind_tuple = kinds
        self._fills = fills
        self._required = required
        self._request, self._trace, self._span = request_index, trace_index, span_index
        self._slow = slow_attribute

    def decode(self, bytes body, object irregular):
        """(the columns as `ExportedColumns`, in the layout's order; the request ids as str) for
        the usage records in an ExportLogsServiceRequest's bytes.

        `irregular(where, record_bytes)` answers for a record this decoder will not judge: the
        record's values in column order, or None when it is rejected. Raises WireError for bytes
        that are not a well-formed request, and lets the callbacks' exceptions through."""
        cdef const unsigned char* b = body
        cdef Py_ssize_t end = len(body)
        cdef Py_ssize_t pos = 0, size, scope_end, res_end
        cdef int field, wire, sfield, swire, lfield, lwire
        cdef int r = 0, s, i
        # A usage record is about 1 KiB on the wire: buffers sized for that grow rarely.
        cdef _Batch out = _Batch(self._kind_tuple, end // 1024 + 1)
        while pos < end:
            pos = _tag(b, pos, end, &field, &wire)
            if pos < 0:
                raise WireError("bad field tag in ExportLogsServiceRequest")
            if field != 1 or wire != WT_LEN:
                pos = _skip(b, pos, end, field, wire, 0)
                if pos < 0:
                    raise WireError("truncated or malformed field in ExportLogsServiceRequest")
                continue
            pos = _length(b, pos, end, &size)
            if pos < 0:
                raise WireError("resource_logs length past the end of the body")
            res_end = pos + size
            s = 0
            while pos < res_end:  # ResourceLogs
                pos = _tag(b, pos, res_end, &sfield, &swire)
                if pos < 0:
                    raise WireError("bad field tag in ResourceLogs")
                if sfield != 2 or swire != WT_LEN:
                    pos = _skip(b, pos, res_end, sfield, swire, 0)
                    if pos < 0:
                        raise WireError("truncated or malformed field in ResourceLogs")
                    continue
                pos = _length(b, pos, res_end, &size)
                if pos < 0:
                    raise WireError("scope_logs length past the end of its ResourceLogs")
                scope_end = pos + size
                i = 0
                while pos < scope_end:  # ScopeLogs
                    pos = _tag(b, pos, scope_end, &lfield, &lwire)
                    if pos < 0:
                        raise WireError("bad field tag in ScopeLogs")
                    if lfield != 2 or lwire != WT_LEN:
                        pos = _skip(b, pos, scope_end, lfield, lwire, 0)
                        if pos < 0:
                            raise WireError("truncated or malformed field in ScopeLogs")
                        continue
                    pos = _length(b, pos, scope_end, &size)
                    if pos < 0:
                        raise WireError("log_records length past the end of its ScopeLogs")
                    self._record(out, body, pos, pos + size, irregular, r, s, i)
                    pos += size
                    i += 1
                s += 1
            r += 1
        cdef ExportedColumns exported = ExportedColumns()
        request_ids = out.strings(self._request)
        _export_struct(&exported.array, out.rows, out.cols, out.ncols)
        return exported, request_ids

    cdef int _record(self, _Batch out, bytes body, Py_ssize_t start, Py_ssize_t end, object irregular,
                     int r, int s, int i) except -1:
        cdef const unsigned char* b = body
        cdef Py_ssize_t pos = start, size, ev = -1, ev_len = 0, tid = -1, tid_len = 0, sid = -1, sid_len = 0
        cdef int field, wire, k
        cdef bint usage, deferred
        cdef Col* col
        cdef const int32_t* offsets
        # One pass: the record's structure, the event name and ids (last wins), and each attribute
        # the native path answers alone straight into its column. The first one that needs the
        # Python decoder stops that (`deferred`): such records are rare, and the Python decoder
        # may only see attributes of a usage record, which the event name (often last) tells.
        deferred = False
        while pos < end:
            pos = _short_tag(b, pos, end, &field, &wire)
            if pos < 0:
                raise WireError("bad field tag in LogRecord")
            if wire == WT_LEN and (field == 6 or field == 9 or field == 10 or field == 12):
                pos = _short_length(b, pos, end, &size)
                if pos < 0:
                    raise WireError("LogRecord field length past the end of the record")
                if field == 6:
                    if not deferred:
                        deferred = self._attribute(out, body, pos, pos + size, False) == DEFER
                elif field == 12:
                    ev, ev_len = pos, size
                elif field == 9:
                    tid, tid_len = pos, size
                else:
                    sid, sid_len = pos, size
                pos += size
            else:
                pos = _skip(b, pos, end, field, wire, 0)
                if pos < 0:
                    raise WireError("truncated or malformed field in LogRecord")
        usage = ev >= 0 and ev_len == 15 and memcmp(b + ev, _USAGE, 15) == 0
        if not usage or deferred:
            for k in range(self._ncols):
                _truncate(&out.cols[k], out.rows)
        if not usage:
            if ev >= 0 and not _utf8(b, ev, ev + ev_len):
                raise WireError("LogRecord.event_name is not UTF-8")
            return 0
        if deferred:  # again, each attribute now answered by the native path or the Python decoder
            pos = start
            while pos < end:
                pos = _short_tag(b, pos, end, &field, &wire)
                if field == 6 and wire == WT_LEN:
                    pos = _short_length(b, pos, end, &size)
                    if not self._attribute(out, body, pos, pos + size, True):
                        return self._irregular(out, body, start, end, irregular, r, s, i)
                    pos += size
                else:
                    pos = _skip(b, pos, end, field, wire, 0)
        # Columns without an attribute take their fill: null, a default, or the record's ids.
        for k in range(self._ncols):
            col = &out.cols[k]
            if col.length > out.rows:
                continue
            fill = self._fills[k]
            if fill is None:
                _add_null(col)
            elif fill is not self._required:
                _add_object(col, fill)
            elif k == self._trace and tid >= 0 and tid_len:
                _add_hex(col, b, tid, tid + tid_len)
            elif k == self._span and sid >= 0 and sid_len:
                _add_hex(col, b, sid, sid + sid_len)
            else:
                return self._irregular(out, body, start, end, irregular, r, s, i)
        col = &out.cols[self._request]
        offsets = <const int32_t*>col.offsets.data
        if offsets[out.rows + 1] == offsets[out.rows]:
            return self._irregular(out, body, start, end, irregular, r, s, i)  # an empty request_id
        out.rows += 1
        return 0

    cdef int _irregular(self, _Batch out, bytes body, Py_ssize_t start, Py_ssize_t end, object irregular,
                        int r, int s, int i) except -1:
        cdef int k
        for k in range(self._ncols):
            _truncate(&out.cols[k], out.rows)
        row = irregular(f"resource_logs[{r}].scope_logs[{s}].log_records[{i}]", body[start:end])
        if row is None:
            return 0
        for k in range(self._ncols):
            _add_object(&out.cols[k], row[k])
        out.rows += 1
        return 0

    cdef int _attribute(self, _Batch out, bytes body, Py_ssize_t start, Py_ssize_t end, bint slow) except -1:
        """Puts one KeyValue's value into its column: True; False when the record is irregular;
        DEFER, without `slow`, where the Python decoder would have to answer."""
        cdef const unsigned char* b = body
        cdef Py_ssize_t pos = start, key, key_len, val, val_len, size
        cdef int column = -1, k, kind
        cdef uint64_t n = 0
        cdef int64_t days
        cdef double d
        cdef Col* col
        # The regular shape: 0x0a <key> 0x12 <AnyValue>, nothing else.
        if pos >= end or b[pos] != 0x0A:
            return self._slow_attribute(out, body, start, end) if slow else DEFER
        pos = _short_length(b, pos + 1, end, &key_len)
        if pos < 0 or end - pos - key_len < 2 or b[pos + key_len] != 0x12:
            return self._slow_attribute(out, body, start, end) if slow else DEFER
        key = pos
        pos = _short_length(b, pos + key_len + 1, end, &val_len)
        if pos < 0 or pos + val_len != end:
            return self._slow_attribute(out, body, start, end) if slow else DEFER
        val = pos
        # Senders write attributes in column order, so the column after the last one matched is
        # tried first; a full scan finds the rest.
        k = self._next
        if k < self._ncols and self._key_len[k] == key_len and _same(self._key_ptr[k], b + key, key_len):
            column = k
        else:
            for k in range(self._ncols):
                if self._key_len[k] == key_len and _same(self._key_ptr[k], b + key, key_len):
                    column = k
                    break
        self._next = column + 1 if column >= 0 else 0
        if column < 0:
            # No column: the value only has to be valid, as KeyValue.FromString would check it.
            if _utf8(b, key, key + key_len) and _plain_value(b, val, end):
                return True
            return self._slow_attribute(out, body, start, end) if slow else DEFER
        kind = self._kinds[column]
        if val_len < 2:
            return self._slow_attribute(out, body, start, end) if slow else DEFER
        if kind == K_TAGS:
            col = out.replace(column)
            size = col.keys.length
            if _tags(col, b, val, end):
                return True
            _truncate(col.keys, size)  # the entries of a list that turned out irregular
            _truncate(col.items, size)
            return self._slow_attribute(out, body, start, end) if slow else DEFER
        if kind == K_STR or kind == K_DATE:
            if b[val] != 0x0A:
                return self._slow_attribute(out, body, start, end) if slow else DEFER
            pos = _short_length(b, val + 1, end, &size)
            if pos < 0 or pos + size != end:
                return self._slow_attribute(out, body, start, end) if slow else DEFER
            if kind == K_DATE:
                if not _iso_days(b, pos, end, &days):
                    return self._slow_attribute(out, body, start, end) if slow else DEFER
                _add_i32(out.replace(column), <int32_t>days)
                return True
            if not _utf8(b, pos, end):
                return self._slow_attribute(out, body, start, end) if slow else DEFER
            _add_str(out.replace(column), <const char*>(b + pos), size)
            return True
        if kind == K_BOOL:
            if b[val] != 0x10 or val_len != 2 or b[val + 1] > 1:
                return self._slow_attribute(out, body, start, end) if slow else DEFER
            _add_bool(out.replace(column), b[val + 1] == 1)
            return True
        if kind == K_INT:
            if b[val] != 0x18:
                return self._slow_attribute(out, body, start, end) if slow else DEFER
            pos = _varint(b, val + 1, end, &n)
            # Ten bytes carry 70 bits; protobuf keeps 64, so a tenth byte over 1 is left to it.
            if pos != end or (end - val - 1 == 10 and b[end - 1] > 1):
                return self._slow_attribute(out, body, start, end) if slow else DEFER
            _add_i64(out.replace(column), <int64_t>n)
            return True
        # K_DOUBLE
        if b[val] != 0x21 or val_len != 9:
            return self._slow_attribute(out, body, start, end) if slow else DEFER
        memcpy(&d, b + val + 1, 8)  # little-endian on every platform this builds for
        _add_f64(out.replace(column), d)
        return True

    cdef bint _slow_attribute(self, _Batch out, bytes body, Py_ssize_t start, Py_ssize_t end) except -1:
        slot, value = self._slow(body[start:end])
        if slot == DEF_IRREGULAR:
            return False
        if slot >= 0:
            _add_object(out.replace(slot), value)
        return True


cdef bint _plain_value(const unsigned char* b, Py_ssize_t val, Py_ssize_t end) noexcept:
    """An AnyValue of one UTF-8 string, bool, int or double field and nothing else."""
    cdef Py_ssize_t pos, size
    cdef uint64_t n
    if val >= end:
        return True  # an empty AnyValue
    if b[val] == 0x0A:
        pos = _short_length(b, val + 1, end, &size)
        return pos >= 0 and pos + size == end and _utf8(b, pos, end)
    if b[val] == 0x10 or b[val] == 0x18:
        pos = _varint(b, val + 1, end, &n)
        return pos == end and end - val - 1 < 10
    if b[val] == 0x21:
        return end - val == 9
    return False


cdef bint _tags(Col* col, const unsigned char* b, Py_ssize_t val, Py_ssize_t end) except -1:
    """Appends an AnyValue holding a list of string-valued KeyValues, each written key then
    value, as one map slot; False (entries left for the caller to cut) for anything else or
    UTF-8 that does not validate."""
    cdef Py_ssize_t pos, size = 0, kv_end, key, key_len = 0, str_len = 0
    if b[val] != 0x32:
        return False
    pos = _short_length(b, val + 1, end, &size)
    if pos < 0 or pos + size != end:
        return False
    while pos < end:
        if b[pos] != 0x0A:
            return False
        pos = _short_length(b, pos + 1, end, &size)
        if pos < 0:
            return False
        kv_end = pos + size
        # 0x0a <key> 0x12 <0x0a <string>>
        if pos >= kv_end or b[pos] != 0x0A:
            return False
        key = _short_length(b, pos + 1, kv_end, &key_len)
        if key < 0 or kv_end - key - key_len < 2 or b[key + key_len] != 0x12:
            return False
        pos = _short_length(b, key + key_len + 1, kv_end, &size)
        if pos < 0 or pos + size != kv_end or size < 2 or b[pos] != 0x0A:
            return False
        pos = _short_length(b, pos + 1, kv_end, &str_len)
        if pos < 0 or pos + str_len != kv_end:
            return False
        if not _utf8(b, key, key + key_len) or not _utf8(b, pos, kv_end):
            return False
        _add_str(col.keys, <const char*>(b + key), key_len)
        _add_str(col.items, <const char*>(b + pos), str_len)
        pos = kv_end
    _begin(col, True)
    _close_map(col)
    return True
