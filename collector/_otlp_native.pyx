# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Usage log records read straight from ExportLogsServiceRequest wire bytes into column lists.

The native half of `collector/native_logs.py`; the pure-Python path (raw_logs.py +
usage_columns.py) is the reference, and tests hold the two to identical tables and errors.

Only the regular shape is decoded here: a KeyValue written as key then value, an AnyValue
holding the one kind its column expects, UTF-8 that decodes. Every other attribute's bytes go to
`slow_attribute` (the Python decoder and its cache), and every record that is not plainly
valid goes whole to `irregular`, so this module never has to reproduce an error message or a
protobuf corner case: it only has to know when not to answer. Every read is bounds-checked
against the end of the enclosing field; a malformed body raises WireError, never reads past it.
"""

from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcmp, memcpy


from collector._wire cimport WT_LEN, _ascii, _hex, _length, _skip, _tag, _varint


class WireError(ValueError):
    """The bytes are not well-formed protobuf (truncated, a length past the end, a bad tag)."""


cdef enum:
    MAX_COLUMNS = 128

# Column kinds, as `native_logs.column_kinds` numbers them.
cdef enum:
    K_STR = 0
    K_BOOL = 1
    K_INT = 2
    K_DOUBLE = 3
    K_DATE = 4
    K_TAGS = 5

DEF_UNUSED = -1
DEF_IRREGULAR = -2

cdef const char* _USAGE = b"meterline.usage"


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


cdef class UsageDecoder:
    """Decodes bodies against one column layout (built once by `native_logs`)."""

    cdef object _keys
    cdef const unsigned char* _key_ptr[MAX_COLUMNS]
    cdef Py_ssize_t _key_len[MAX_COLUMNS]
    cdef int _kinds[MAX_COLUMNS]
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
        self._keys = keys
        self._ncols = len(keys)
        for k in range(self._ncols):
            self._key_ptr[k] = <const unsigned char*>(<bytes>keys[k])
            self._key_len[k] = len(<bytes>keys[k])
            self._kinds[k] = kinds[k]
        self._fills = fills
        self._required = required
        self._request, self._trace, self._span = request_index, trace_index, span_index
        self._slow = slow_attribute

    def decode(self, bytes body, object irregular):
        """Column lists for the usage records in an ExportLogsServiceRequest's bytes.

        `irregular(where, record_bytes)` answers for a record this decoder will not judge: the
        record's values in column order, or None when it is rejected. Raises WireError for bytes
        that are not a well-formed request, and lets the callbacks' exceptions through."""
        cdef const unsigned char* b = body
        cdef Py_ssize_t end = len(body)
        cdef Py_ssize_t pos = 0, size, scope_pos, scope_end, rec_pos, rec_end, res_end
        cdef int field, wire, sfield, swire, lfield, lwire
        cdef int r = 0, s, i
        cdef list columns = [[] for _ in range(self._ncols)]
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
                    self._record(body, pos, pos + size, columns, irregular, r, s, i)
                    pos += size
                    i += 1
                s += 1
            r += 1
        return columns

    cdef _record(self, bytes body, Py_ssize_t start, Py_ssize_t end, list columns, object irregular,
                 int r, int s, int i):
        cdef const unsigned char* b = body
        cdef Py_ssize_t pos = start, size, ev = -1, ev_len = 0, tid = -1, tid_len = 0, sid = -1, sid_len = 0
        cdef int field, wire, k
        cdef bint usage
        # Pass 1: check the whole record's structure, find the event name and the ids (last wins).
        while pos < end:
            pos = _tag(b, pos, end, &field, &wire)
            if pos < 0:
                raise WireError("bad field tag in LogRecord")
            if wire == WT_LEN and (field == 6 or field == 9 or field == 10 or field == 12):
                pos = _length(b, pos, end, &size)
                if pos < 0:
                    raise WireError("LogRecord field length past the end of the record")
                if field == 12:
                    ev, ev_len = pos, size
                elif field == 9:
                    tid, tid_len = pos, size
                elif field == 10:
                    sid, sid_len = pos, size
                pos += size
            else:
                pos = _skip(b, pos, end, field, wire, 0)
                if pos < 0:
                    raise WireError("truncated or malformed field in LogRecord")
        usage = ev >= 0 and ev_len == 15 and memcmp(b + ev, _USAGE, 15) == 0
        if not usage:
            if ev >= 0 and not _ascii(b, ev, ev + ev_len):
                try:
                    PyUnicode_DecodeUTF8(<const char*>(b + ev), ev_len, NULL)
                except UnicodeDecodeError:
                    raise WireError("LogRecord.event_name is not UTF-8") from None
            return
        # Pass 2: the attributes (the structure is known good now).
        cdef list values = list(self._fills)
        pos = start
        while pos < end:
            pos = _tag(b, pos, end, &field, &wire)
            if field == 6 and wire == WT_LEN:
                pos = _length(b, pos, end, &size)
                if not self._attribute(body, pos, pos + size, values):
                    self._irregular(body, start, end, columns, irregular, r, s, i)
                    return
                pos += size
            else:
                pos = _skip(b, pos, end, field, wire, 0)
        required = self._required
        if values[self._trace] is required and tid >= 0 and tid_len:
            values[self._trace] = _hex(b, tid, tid + tid_len)
        if values[self._span] is required and sid >= 0 and sid_len:
            values[self._span] = _hex(b, sid, sid + sid_len)
        for k in range(self._ncols):
            if values[k] is required:
                self._irregular(body, start, end, columns, irregular, r, s, i)
                return
        if not values[self._request]:
            self._irregular(body, start, end, columns, irregular, r, s, i)
            return
        for k in range(self._ncols):
            (<list>columns[k]).append(values[k])

    cdef _irregular(self, bytes body, Py_ssize_t start, Py_ssize_t end, list columns, object irregular,
                    int r, int s, int i):
        row = irregular(f"resource_logs[{r}].scope_logs[{s}].log_records[{i}]", body[start:end])
        if row is None:
            return
        for k in range(self._ncols):
            (<list>columns[k]).append(row[k])

    cdef bint _attribute(self, bytes body, Py_ssize_t start, Py_ssize_t end, list values) except -1:
        """Puts one KeyValue's value into `values`; False when the record is irregular."""
        cdef const unsigned char* b = body
        cdef Py_ssize_t pos = start, key, key_len, val, val_len, size
        cdef int column = -1, k, kind
        cdef uint64_t n = 0
        cdef int64_t days
        cdef double d
        # The regular shape: 0x0a <key> 0x12 <AnyValue>, nothing else.
        if pos >= end or b[pos] != 0x0A:
            return self._slow_attribute(body, start, end, values)
        pos = _length(b, pos + 1, end, &key_len)
        if pos < 0 or end - pos - key_len < 2 or b[pos + key_len] != 0x12:
            return self._slow_attribute(body, start, end, values)
        key = pos
        pos = _length(b, pos + key_len + 1, end, &val_len)
        if pos < 0 or pos + val_len != end:
            return self._slow_attribute(body, start, end, values)
        val = pos
        # Senders write attributes in column order, so the column after the last one matched is
        # tried first; a full scan finds the rest.
        k = self._next
        if k < self._ncols and self._key_len[k] == key_len and memcmp(self._key_ptr[k], b + key, key_len) == 0:
            column = k
        else:
            for k in range(self._ncols):
                if self._key_len[k] == key_len and memcmp(self._key_ptr[k], b + key, key_len) == 0:
                    column = k
                    break
        self._next = column + 1 if column >= 0 else 0
        if column < 0:
            # No column: the value only has to be valid, as KeyValue.FromString would check it.
            if _ascii(b, key, key + key_len) and _plain_value(b, val, end):
                return True
            return self._slow_attribute(body, start, end, values)
        kind = self._kinds[column]
        if val_len < 2:
            return self._slow_attribute(body, start, end, values)
        if kind == K_TAGS:
            tags = _tags(b, val, end)
            if tags is None:
                return self._slow_attribute(body, start, end, values)
            values[column] = tags
            return True
        if kind == K_STR or kind == K_DATE:
            if b[val] != 0x0A:
                return self._slow_attribute(body, start, end, values)
            pos = _length(b, val + 1, end, &size)
            if pos < 0 or pos + size != end:
                return self._slow_attribute(body, start, end, values)
            if kind == K_DATE:
                if not _iso_days(b, pos, end, &days):
                    return self._slow_attribute(body, start, end, values)
                values[column] = days
                return True
            try:
                values[column] = PyUnicode_DecodeUTF8(<const char*>(b + pos), size, NULL)
            except UnicodeDecodeError:
                return self._slow_attribute(body, start, end, values)
            return True
        if kind == K_BOOL:
            if b[val] != 0x10 or val_len != 2 or b[val + 1] > 1:
                return self._slow_attribute(body, start, end, values)
            values[column] = b[val + 1] == 1
            return True
        if kind == K_INT:
            if b[val] != 0x18:
                return self._slow_attribute(body, start, end, values)
            pos = _varint(b, val + 1, end, &n)
            # Ten bytes carry 70 bits; protobuf keeps 64, so a tenth byte over 1 is left to it.
            if pos != end or (end - val - 1 == 10 and b[end - 1] > 1):
                return self._slow_attribute(body, start, end, values)
            values[column] = <int64_t>n
            return True
        # K_DOUBLE
        if b[val] != 0x21 or val_len != 9:
            return self._slow_attribute(body, start, end, values)
        memcpy(&d, b + val + 1, 8)  # little-endian on every platform this builds for
        values[column] = d
        return True

    cdef bint _slow_attribute(self, bytes body, Py_ssize_t start, Py_ssize_t end, list values) except -1:
        slot, value = self._slow(body[start:end])
        if slot == DEF_IRREGULAR:
            return False
        if slot >= 0:
            values[slot] = value
        return True


cdef bint _plain_value(const unsigned char* b, Py_ssize_t val, Py_ssize_t end) noexcept:
    """An AnyValue of one ASCII string, bool, int or double field and nothing else."""
    cdef Py_ssize_t pos, size
    cdef uint64_t n
    if val >= end:
        return True  # an empty AnyValue
    if b[val] == 0x0A:
        pos = _length(b, val + 1, end, &size)
        return pos >= 0 and pos + size == end and _ascii(b, pos, end)
    if b[val] == 0x10 or b[val] == 0x18:
        pos = _varint(b, val + 1, end, &n)
        return pos == end and end - val - 1 < 10
    if b[val] == 0x21:
        return end - val == 9
    return False


cdef object _tags(const unsigned char* b, Py_ssize_t val, Py_ssize_t end):
    """(key, value) pairs of an AnyValue holding a list of string-valued KeyValues, each written
    key then value; None for anything else (or UTF-8 that does not decode)."""
    cdef Py_ssize_t pos, size = 0, kv_end, key, key_len = 0, str_len = 0
    cdef list pairs = []
    if b[val] != 0x32:
        return None
    pos = _length(b, val + 1, end, &size)
    if pos < 0 or pos + size != end:
        return None
    while pos < end:
        if b[pos] != 0x0A:
            return None
        pos = _length(b, pos + 1, end, &size)
        if pos < 0:
            return None
        kv_end = pos + size
        # 0x0a <key> 0x12 <0x0a <string>>
        if pos >= kv_end or b[pos] != 0x0A:
            return None
        key = _length(b, pos + 1, kv_end, &key_len)
        if key < 0 or kv_end - key - key_len < 2 or b[key + key_len] != 0x12:
            return None
        pos = _length(b, key + key_len + 1, kv_end, &size)
        if pos < 0 or pos + size != kv_end or size < 2 or b[pos] != 0x0A:
            return None
        pos = _length(b, pos + 1, kv_end, &str_len)
        if pos < 0 or pos + str_len != kv_end:
            return None
        try:
            pairs.append((
                PyUnicode_DecodeUTF8(<const char*>(b + key), key_len, NULL),
                PyUnicode_DecodeUTF8(<const char*>(b + pos), str_len, NULL),
            ))
        except UnicodeDecodeError:
            return None
        pos = kv_end
    return pairs
