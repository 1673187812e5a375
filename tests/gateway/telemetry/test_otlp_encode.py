"""The native attribute encoder must write exactly the bytes of the Python one."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from gateway.telemetry import otlp_wire

pytestmark = pytest.mark.native("gateway.telemetry._otlp_encode")


class Color(enum.StrEnum):
    RED = "red"


_values: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=2**63, max_value=2**70),  # beyond int64: the Python encoder's wrap
    st.floats(),
    st.booleans(),
    st.just(Color.RED),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=15), st.lists(st.tuples(st.text(max_size=200), _values), max_size=8))
def test_native_bytes_are_the_python_bytes(number: int, pairs: list[tuple[str, Any]]) -> None:
    assert otlp_wire.attributes(number, pairs) == otlp_wire.python_attributes(number, pairs)


def test_a_usage_shaped_attribute_list_parses_back() -> None:
    pairs = [("meterline.usage.schema_version", 2), ("agent_id", "客服"), ("cost_usd", 0.25), ("stream", True)]
    record = LogRecord.FromString(otlp_wire.attributes(6, pairs))
    assert [(kv.key, kv.value.WhichOneof("value")) for kv in record.attributes] == [
        ("meterline.usage.schema_version", "int_value"),
        ("agent_id", "string_value"),
        ("cost_usd", "double_value"),
        ("stream", "bool_value"),
    ]
    assert isinstance(record.attributes[0], KeyValue) and record.attributes[1].value.string_value == "客服"


def test_bad_field_numbers_and_unencodable_text_raise_as_python_does() -> None:
    with pytest.raises(ValueError, match="field number"):
        otlp_wire.attributes(16, [("k", 1)])
    with pytest.raises(UnicodeEncodeError):
        otlp_wire.attributes(6, [("k", "\ud800")])
    with pytest.raises(UnicodeEncodeError):
        otlp_wire.python_attributes(6, [("k", "\ud800")])
