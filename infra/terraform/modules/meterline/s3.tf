# The ledger: s3://<bucket>/ledger/{usage,spans,quarantine}/date=YYYY-MM-DD/*.parquet, written by
# the collector (storage.data_dir), read by analytics, the dashboard and Athena. Athena's
# results land under athena-results/.

resource "aws_s3_bucket" "ledger" {
  bucket        = "${local.name}-ledger-${local.account_id}"
  force_destroy = var.force_destroy_ledger
  tags          = local.tags
}

resource "aws_s3_bucket_versioning" "ledger" {
  bucket = aws_s3_bucket.ledger.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "ledger" {
  bucket = aws_s3_bucket.ledger.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "ledger" {
  bucket                  = aws_s3_bucket.ledger.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "ledger" {
  bucket = aws_s3_bucket.ledger.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

data "aws_iam_policy_document" "ledger" {
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.ledger.arn, "${aws_s3_bucket.ledger.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "ledger" {
  bucket     = aws_s3_bucket.ledger.id
  policy     = data.aws_iam_policy_document.ledger.json
  depends_on = [aws_s3_bucket_public_access_block.ledger]
}

# The collector removes partitions older than storage.retention_days; the lifecycle removes
# what it leaves behind one day later (and the old versions its rewrites leave after 30 days).
resource "aws_s3_bucket_lifecycle_configuration" "ledger" {
  bucket = aws_s3_bucket.ledger.id

  rule {
    id     = "ledger-usage-retention"
    status = "Enabled"
    filter {
      prefix = "ledger/usage/"
    }
    expiration {
      days = var.retention_days + 1
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  rule {
    id     = "ledger-spans-retention"
    status = "Enabled"
    filter {
      prefix = "ledger/spans/"
    }
    expiration {
      days = var.retention_days + 1
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  rule {
    id     = "ledger-quarantine-retention"
    status = "Enabled"
    filter {
      prefix = "ledger/quarantine/"
    }
    expiration {
      days = var.retention_days + 1
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  rule {
    id     = "athena-results"
    status = "Enabled"
    filter {
      prefix = "athena-results/"
    }
    expiration {
      days = 30
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}
