# cython: language_level=3
"""What the span decoder (`_otlp_spans.pyx`) shares with this module at the C level."""

from collector._arrow_columns cimport ArrowArray


cdef class ExportedColumns:
    """The decoded columns as an Arrow C data interface struct array, until pyarrow takes them."""

    cdef ArrowArray array
