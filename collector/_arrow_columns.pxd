# cython: language_level=3
"""Arrow columns built in C and handed to pyarrow through the Arrow C data interface.

Each column keeps its buffers in Arrow's own layout (validity bitmap, int32 offsets for utf8
and map, int64 / float64 / int32 values or a bit-packed bool bitmap) in malloc'd memory, so
the decoders append a value with a store, not a Python object. `_export` moves the buffers
into an ArrowArray struct (a struct array of the columns) whose release callback frees them;
pyarrow imports it without a copy (`RecordBatch._import_from_c`).
"""

from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset


cdef enum:
    # Column kinds (the usage decoder's numbering, `native_logs._KIND_CODES`).
    K_STR = 0
    K_BOOL = 1
    K_INT = 2
    K_DOUBLE = 3
    K_DATE = 4
    K_TAGS = 5
    OFFSET_LIMIT = 0x7FFFFFFF  # utf8 and map offsets are int32


cdef extern from *:
    """
    struct ArrowArray {
        int64_t length;
        int64_t null_count;
        int64_t offset;
        int64_t n_buffers;
        int64_t n_children;
        const void** buffers;
        struct ArrowArray** children;
        struct ArrowArray* dictionary;
        void (*release)(struct ArrowArray*);
        void* private_data;
    };
    """
    struct ArrowArray:
        int64_t length, null_count, offset, n_buffers, n_children
        const void** buffers
        ArrowArray** children
        ArrowArray* dictionary
        void (*release)(ArrowArray*) noexcept nogil
        void* private_data


cdef struct Buf:
    char* data
    Py_ssize_t len, cap


cdef struct Col:
    int kind
    Py_ssize_t length, nulls
    Buf valid, offsets, values
    Col* keys  # the map's children (tags); NULL for other kinds
    Col* items


cdef inline char* _reserve(Buf* buf, Py_ssize_t n) except NULL:
    """Room for `n` more bytes at `data + len` (the caller advances `len`)."""
    cdef Py_ssize_t cap
    cdef char* grown
    if buf.len + n > buf.cap:
        cap = max(2 * buf.cap, buf.len + n)
        grown = <char*>realloc(buf.data, cap)
        if grown == NULL:
            raise MemoryError()
        buf.data, buf.cap = grown, cap
    return buf.data + buf.len


cdef inline const void* _fit(Buf* buf) noexcept nogil:
    """The buffer's memory trimmed to its length (an exported table holds it until written)."""
    cdef char* fitted = <char*>realloc(buf.data, buf.len if buf.len > 0 else 1)
    if fitted != NULL:  # else the larger block is as good
        buf.data = fitted
    return buf.data


cdef inline int _buf_init(Buf* buf, Py_ssize_t cap) except -1:
    buf.data = <char*>malloc(cap)  # never NULL, even for an empty buffer: Arrow wants a pointer
    if buf.data == NULL:
        raise MemoryError()
    buf.len, buf.cap = 0, cap
    return 0


cdef inline int _col_init(Col* col, int kind, Py_ssize_t rows) except -1:
    """`col` zeroed (calloc), then its buffers for about `rows` values."""
    col.kind = kind
    _buf_init(&col.valid, rows // 8 + 8)
    _buf_init(&col.offsets, 4 * rows + 8 if kind == K_STR or kind == K_TAGS else 8)
    (<int32_t*>col.offsets.data)[0] = 0
    col.offsets.len = 4
    if kind == K_TAGS:
        col.keys = <Col*>calloc(2, sizeof(Col))
        if col.keys == NULL:
            raise MemoryError()
        col.items = col.keys + 1
        _col_init(col.keys, K_STR, rows)
        _col_init(col.items, K_STR, rows)
        _buf_init(&col.values, 8)
    elif kind == K_STR:
        _buf_init(&col.values, 16 * rows + 8)
    elif kind == K_BOOL:
        _buf_init(&col.values, rows // 8 + 8)
    else:
        _buf_init(&col.values, 8 * rows + 8)
    return 0


cdef inline void _col_free(Col* col) noexcept nogil:
    free(col.valid.data)
    free(col.offsets.data)
    free(col.values.data)
    col.valid.data = col.offsets.data = col.values.data = NULL
    if col.keys != NULL:
        _col_free(col.keys)
        _col_free(col.items)
        free(col.keys)
        col.keys = col.items = NULL


cdef inline void _bit(Buf* bits, Py_ssize_t index, bint value) noexcept:
    if value:
        bits.data[index >> 3] |= <char>(1 << (index & 7))
    else:
        bits.data[index >> 3] &= <char>~(1 << (index & 7))


cdef inline int _next_bit(Buf* bits, Py_ssize_t index, bint value) except -1:
    """Sets bit `index`, the next one: the bytes kept at ceil((index + 1) / 8)."""
    if (index & 7) == 0:
        _reserve(bits, 1)[0] = 0
        bits.len += 1
    _bit(bits, index, value)
    return 0


cdef inline int _begin(Col* col, bint valid) except -1:
    """Opens the next slot: its value follows (`valid`), or it is null."""
    _next_bit(&col.valid, col.length, valid)
    if not valid:
        col.nulls += 1
    return 0


cdef inline int _end_offset(Col* col, Py_ssize_t offset) except -1:
    if offset > OFFSET_LIMIT:
        raise OverflowError("a usage batch's strings or tags are over 2 GiB")
    (<int32_t*>_reserve(&col.offsets, 4))[0] = <int32_t>offset
    col.offsets.len += 4
    col.length += 1
    return 0


cdef inline int _add_str(Col* col, const char* data, Py_ssize_t size) except -1:
    _begin(col, True)
    memcpy(_reserve(&col.values, size), data, size)
    col.values.len += size
    return _end_offset(col, col.values.len)


cdef inline int _add_i64(Col* col, int64_t value) except -1:
    _begin(col, True)
    (<int64_t*>_reserve(&col.values, 8))[0] = value
    col.values.len += 8
    col.length += 1
    return 0


cdef inline int _add_f64(Col* col, double value) except -1:
    _begin(col, True)
    (<double*>_reserve(&col.values, 8))[0] = value
    col.values.len += 8
    col.length += 1
    return 0


cdef inline int _add_i32(Col* col, int32_t value) except -1:
    _begin(col, True)
    (<int32_t*>_reserve(&col.values, 4))[0] = value
    col.values.len += 4
    col.length += 1
    return 0


cdef inline int _add_bool(Col* col, bint value) except -1:
    _begin(col, True)
    _next_bit(&col.values, col.length, value)
    col.length += 1
    return 0


cdef inline int _close_map(Col* col) except -1:
    """Ends the current tags slot after its entries went into `keys` and `items`."""
    return _end_offset(col, col.keys.length)


cdef inline int _add_null(Col* col) except -1:
    cdef int width
    _begin(col, False)
    if col.kind == K_STR:
        return _end_offset(col, col.values.len)
    if col.kind == K_TAGS:
        return _close_map(col)
    if col.kind == K_BOOL:
        _next_bit(&col.values, col.length, False)
    else:
        width = 4 if col.kind == K_DATE else 8
        memset(_reserve(&col.values, width), 0, width)
        col.values.len += width
    col.length += 1
    return 0


cdef inline void _truncate(Col* col, Py_ssize_t length) noexcept:
    """Drops every value from `length` on (a replaced attribute, an irregular record)."""
    cdef Py_ssize_t k
    cdef int32_t cut
    if col.length <= length:
        return
    for k in range(length, col.length):
        if not (col.valid.data[k >> 3] >> (k & 7)) & 1:
            col.nulls -= 1
    col.valid.len = (length + 7) >> 3
    if col.kind == K_STR or col.kind == K_TAGS:
        col.offsets.len = 4 * (length + 1)
        cut = (<int32_t*>col.offsets.data)[length]
        if col.kind == K_STR:
            col.values.len = cut
        else:
            _truncate(col.keys, cut)
            _truncate(col.items, cut)
    elif col.kind == K_BOOL:
        col.values.len = (length + 7) >> 3
    else:
        col.values.len = length * (4 if col.kind == K_DATE else 8)
    col.length = length


cdef inline int _add_object(Col* col, object value) except -1:
    """Appends a Python value (the slow decoder's, an irregular record's or span's, a fill)."""
    cdef Py_ssize_t size
    cdef const char* data
    if value is None:
        return _add_null(col)
    if col.kind == K_STR:
        data = PyUnicode_AsUTF8AndSize(value, &size)
        return _add_str(col, data, size)
    if col.kind == K_INT:
        return _add_i64(col, value)
    if col.kind == K_DOUBLE:
        return _add_f64(col, value)
    if col.kind == K_DATE:
        return _add_i32(col, value)
    if col.kind == K_BOOL:
        if not isinstance(value, bool):
            raise TypeError(f"expected bool, got {type(value).__name__}")
        return _add_bool(col, value is True)
    for key, item in value:
        _add_object(col.keys, key)
        _add_object(col.items, item)
    _begin(col, True)
    return _close_map(col)


cdef inline int _add_hex(Col* col, const unsigned char* b, Py_ssize_t start, Py_ssize_t end) except -1:
    """b[start:end] as lowercase hex (trace and span ids)."""
    cdef const char* digits = b"0123456789abcdef"
    cdef Py_ssize_t n = end - start, k
    cdef char* out
    _begin(col, True)
    out = _reserve(&col.values, 2 * n)
    for k in range(n):
        out[2 * k] = digits[b[start + k] >> 4]
        out[2 * k + 1] = digits[b[start + k] & 15]
    col.values.len += 2 * n
    return _end_offset(col, col.values.len)


# -- export: the Arrow C data interface ----------------------------------------------------------

cdef struct _Owned:
    const void* buffers[3]
    ArrowArray* children[2]
    ArrowArray kids[2]  # the children's structs, when they are this array's own


cdef inline void _release(ArrowArray* array) noexcept nogil:
    cdef _Owned* owned = <_Owned*>array.private_data
    cdef int64_t k
    for k in range(array.n_children):
        if array.children[k].release != NULL:
            array.children[k].release(array.children[k])
    if owned != NULL:
        for k in range(array.n_buffers):
            free(<void*>owned.buffers[k])
        free(owned)
    array.release = NULL


cdef inline int _export_col(Col* col, ArrowArray* out) except -1:
    """Moves `col`'s buffers into `out` (the column is left empty, its pointers NULL)."""
    cdef _Owned* owned = <_Owned*>calloc(1, sizeof(_Owned))
    if owned == NULL:
        raise MemoryError()
    out.length, out.null_count, out.offset = col.length, col.nulls, 0
    out.dictionary = NULL
    out.private_data = owned
    out.buffers = owned.buffers
    out.children = owned.children
    out.release = _release
    out.n_children = 0
    if col.nulls:
        owned.buffers[0] = _fit(&col.valid)
    else:
        free(col.valid.data)  # no nulls: no bitmap, as pyarrow builds it
    col.valid.data = NULL
    if col.kind == K_STR:
        out.n_buffers = 3
        owned.buffers[1], owned.buffers[2] = _fit(&col.offsets), _fit(&col.values)
        col.offsets.data = col.values.data = NULL
        return 0
    if col.kind == K_TAGS:
        out.n_buffers = 2
        owned.buffers[1] = _fit(&col.offsets)
        col.offsets.data = NULL
        # One child, the entries: a struct (no buffers of its own but the absent bitmap) of keys and items.
        out.n_children = 1
        owned.children[0] = &owned.kids[0]
        _export_struct(owned.kids, col.keys.length, col.keys, 2)
        return 0
    out.n_buffers = 2
    owned.buffers[1] = _fit(&col.values)
    col.values.data = NULL
    return 0


cdef inline int _export_struct(ArrowArray* out, Py_ssize_t length, Col* cols, int ncols) except -1:
    """A struct array (no nulls) of `ncols` columns, into `out`; the children own themselves."""
    cdef ArrowArray** children = <ArrowArray**>calloc(ncols, sizeof(ArrowArray*))
    cdef _Owned* owned = <_Owned*>calloc(1, sizeof(_Owned))
    cdef int k
    if children == NULL or owned == NULL:
        free(children)
        free(owned)
        raise MemoryError()
    out.length, out.null_count, out.offset = length, 0, 0
    out.n_buffers, out.n_children = 1, 0
    out.buffers = owned.buffers  # [NULL]: no validity bitmap
    out.children = children
    out.dictionary = NULL
    out.private_data = owned
    out.release = _release_struct
    for k in range(ncols):
        children[k] = <ArrowArray*>calloc(1, sizeof(ArrowArray))
        if children[k] == NULL:
            _release_struct(out)
            raise MemoryError()
        out.n_children = k + 1
        _export_col(&cols[k], children[k])
    return 0


cdef inline void _release_struct(ArrowArray* array) noexcept nogil:
    cdef int64_t k
    for k in range(array.n_children):
        if array.children[k].release != NULL:
            array.children[k].release(array.children[k])
        free(array.children[k])
    free(array.children)
    free(array.private_data)
    array.release = NULL
