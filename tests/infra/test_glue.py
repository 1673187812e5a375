"""The Glue tables' columns are the usage record's and the stored span's, derived from their
Arrow schemas (meterline/usage_record.py, meterline/span_row.py) and mapped to Glue types;
`date` is the partition key, projected over the collector's `date=YYYY-MM-DD` folders."""

from __future__ import annotations

import pyarrow as pa
import pytest

from meterline.layout import SPANS_TABLE, USAGE_TABLE
from meterline.span_row import span_arrow_schema
from meterline.usage_record import usage_arrow_schema
from tests.infra.conftest import Deployment
from tests.infra.terraform import MODULE, locals_of, resources, unquote

SCHEMAS = {USAGE_TABLE: usage_arrow_schema, SPANS_TABLE: span_arrow_schema}
LOCALS = {USAGE_TABLE: "usage_columns", SPANS_TABLE: "span_columns"}


def glue_type(arrow: pa.DataType) -> str:
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return "string"
    if pa.types.is_int64(arrow):
        return "bigint"
    if pa.types.is_int32(arrow):
        return "int"
    if pa.types.is_float64(arrow):
        return "double"
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    if pa.types.is_date32(arrow):
        return "date"
    if pa.types.is_map(arrow):
        return f"map<{glue_type(arrow.key_type)},{glue_type(arrow.item_type)}>"
    raise AssertionError(f"no Glue type for Arrow {arrow}: add it here and in the module's glue.tf")


def expected(table: str) -> list[tuple[str, str]]:
    return [(f.name, glue_type(f.type)) for f in SCHEMAS[table]() if f.name != "date"]


@pytest.mark.parametrize("table", [USAGE_TABLE, SPANS_TABLE])
def test_the_glue_columns_are_the_records_schema(table: str) -> None:
    columns = [(unquote(c["name"]), unquote(c["type"])) for c in locals_of(MODULE)[LOCALS[table]]]
    assert columns == expected(table)
    assert SCHEMAS[table]().field("date").type == pa.date32()  # the partition key's type


@pytest.mark.parametrize("table", [USAGE_TABLE, SPANS_TABLE])
def test_the_planned_tables_project_the_date_partitions(deployment: Deployment, table: str) -> None:
    planned = resources(deployment.plan, "aws_glue_catalog_table")[f'aws_glue_catalog_table.this["{table}"]']
    descriptor = planned["storage_descriptor"][0]
    assert [(c["name"], c["type"]) for c in descriptor["columns"]] == expected(table)
    assert [(k["name"], k["type"]) for k in planned["partition_keys"]] == [("date", "date")]
    parameters = planned["parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["storage.location.template"] == f"{descriptor['location'].rstrip('/')}/date=${{date}}"
    assert descriptor["location"].endswith(f"/ledger/{table}/")
