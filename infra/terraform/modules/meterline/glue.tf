# Glue tables over the same Parquet the collector writes, with partition projection on the
# `date=YYYY-MM-DD` folders (no crawler, no MSCK REPAIR). The columns are the usage record's
# (meterline/usage_record.py) and the stored span's (meterline/span_row.py) in Glue types;
# `date` is the partition key (the files hold it too, with the same value).
# tests/infra/test_glue.py derives both lists from the Arrow schemas and compares.

locals {
  usage_columns = [
    { name = "request_id", type = "string" },
    { name = "trace_id", type = "string" },
    { name = "span_id", type = "string" },
    { name = "ts_start", type = "timestamp" },
    { name = "ts_end", type = "timestamp" },
    { name = "latency_ms", type = "double" },
    { name = "agent_id", type = "string" },
    { name = "team", type = "string" },
    { name = "operation", type = "string" },
    { name = "model_requested", type = "string" },
    { name = "ttft_ms", type = "double" },
    { name = "project", type = "string" },
    { name = "key_alias", type = "string" },
    { name = "tags", type = "map<string,string>" },
    { name = "model", type = "string" },
    { name = "provider", type = "string" },
    { name = "stream", type = "boolean" },
    { name = "input_tokens", type = "bigint" },
    { name = "output_tokens", type = "bigint" },
    { name = "cache_read_input_tokens", type = "bigint" },
    { name = "cache_creation_input_tokens", type = "bigint" },
    { name = "reasoning_output_tokens", type = "bigint" },
    { name = "usage_estimated", type = "boolean" },
    { name = "usage_raw", type = "string" },
    { name = "cost_usd", type = "double" },
    { name = "price_version", type = "string" },
    { name = "provider_key_version", type = "string" },
    { name = "status", type = "string" },
    { name = "http_status", type = "bigint" },
    { name = "error_type", type = "string" },
    { name = "attempts", type = "bigint" },
    { name = "fallback_used", type = "boolean" },
    { name = "cache_hit", type = "boolean" },
    { name = "cost_saved_usd", type = "double" },
    { name = "gateway_instance", type = "string" },
    { name = "env", type = "string" },
    { name = "tenant", type = "string" },
    { name = "text_repaired", type = "boolean" },
  ]
  span_columns = [
    { name = "trace_id", type = "string" },
    { name = "span_id", type = "string" },
    { name = "name", type = "string" },
    { name = "ts_start", type = "timestamp" },
    { name = "ts_end", type = "timestamp" },
    { name = "duration_ms", type = "double" },
    { name = "parent_span_id", type = "string" },
    { name = "kind", type = "string" },
    { name = "service_name", type = "string" },
    { name = "scope_name", type = "string" },
    { name = "status_code", type = "string" },
    { name = "status_message", type = "string" },
    { name = "operation", type = "string" },
    { name = "request_model", type = "string" },
    { name = "response_model", type = "string" },
    { name = "agent_id", type = "string" },
    { name = "input_tokens", type = "bigint" },
    { name = "output_tokens", type = "bigint" },
    { name = "cost_usd", type = "double" },
    { name = "attributes", type = "string" },
    { name = "resource_attributes", type = "string" },
  ]
  glue_tables = {
    usage = local.usage_columns
    spans = local.span_columns
  }
}

resource "aws_glue_catalog_database" "this" {
  name        = local.glue_name
  description = "Meterline ledger of ${local.name} (Parquet in s3://${aws_s3_bucket.ledger.bucket}/ledger)"
  tags        = local.tags
}

resource "aws_glue_catalog_table" "this" {
  for_each      = local.glue_tables
  name          = each.key
  database_name = aws_glue_catalog_database.this.name
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL                        = "TRUE"
    classification                  = "parquet"
    "parquet.compression"           = "ZSTD"
    "projection.enabled"            = "true"
    "projection.date.type"          = "date"
    "projection.date.format"        = "yyyy-MM-dd"
    "projection.date.range"         = "2024-01-01,NOW"
    "projection.date.interval"      = "1"
    "projection.date.interval.unit" = "DAYS"
    "storage.location.template"     = "${local.ledger}/${each.key}/date=$${date}"
  }

  partition_keys {
    name = "date"
    type = "date"
  }

  storage_descriptor {
    location      = "${local.ledger}/${each.key}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    dynamic "columns" {
      for_each = each.value
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}
