# Athena over the Glue tables: a workgroup that enforces an encrypted result location, and the
# finance questions as named queries (spend by agent, team and model, per day and per month).

resource "aws_athena_workgroup" "this" {
  name          = local.name
  force_destroy = true # holds saved queries only; the results live in the ledger bucket
  tags          = local.tags

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = 10 * 1024 * 1024 * 1024

    result_configuration {
      output_location       = "s3://${aws_s3_bucket.ledger.bucket}/athena-results/"
      expected_bucket_owner = local.account_id

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.this.arn
      }
    }

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }
  }
}

locals {
  spend_queries = {
    for pair in setproduct(["agent_id", "team", "model"], ["day", "month"]) :
    "spend-by-${trimsuffix(pair[0], "_id")}-per-${pair[1]}" => { dimension = pair[0], period = pair[1] }
  }
}

resource "aws_athena_named_query" "spend" {
  for_each    = local.spend_queries
  name        = each.key
  description = "Spend by ${each.value.dimension} per ${each.value.period} (${var.timezone}), as the marts count it"
  workgroup   = aws_athena_workgroup.this.name
  database    = aws_glue_catalog_database.this.name
  query = templatefile("${path.module}/queries/spend.sql.tftpl", {
    database  = aws_glue_catalog_database.this.name
    dimension = each.value.dimension
    period    = each.value.period
    timezone  = var.timezone
  })
}
