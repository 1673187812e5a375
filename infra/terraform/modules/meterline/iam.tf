# Roles. Every task role gets the one secrets policy: GetSecretValue on exactly the secrets the
# config references, kms:Decrypt on exactly their customer-managed keys, only via Secrets
# Manager. It is what `meterline secrets iam-policy` prints for the rendered config
# (tests/infra/test_iam.py). Each role adds only what its component does besides.

locals {
  secret_arns = sort(distinct(concat(
    [for name in keys(local.generated) : aws_secretsmanager_secret.this[name].arn],
    [for key in values(var.provider_keys) : key.secret_arn],
    [for secret in values(var.extra_secret_arns) : secret.secret_arn],
  )))
  secret_kms_key_arns = sort(distinct(concat(
    [aws_kms_key.this.arn],
    [for key in values(var.provider_keys) : key.kms_key_arn if key.kms_key_arn != null],
    [for secret in values(var.extra_secret_arns) : secret.kms_key_arn if secret.kms_key_arn != null],
  )))

  secrets_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "MeterlineReadSecrets"
        Effect   = "Allow"
        Action   = "secretsmanager:GetSecretValue"
        Resource = local.secret_arns
      },
      {
        Sid       = "MeterlineDecryptSecrets"
        Effect    = "Allow"
        Action    = "kms:Decrypt"
        Resource  = local.secret_kms_key_arns
        Condition = { StringEquals = { "kms:ViaService" = "secretsmanager.${local.region}.amazonaws.com" } }
      },
    ]
  }

  task_roles = toset(["gateway", "collector", "analytics", "dashboard", "keys"])
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "task" {
  for_each           = local.task_roles
  name               = "${local.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

resource "aws_iam_policy" "secrets" {
  name        = "${local.name}-secrets"
  description = "Read exactly the secrets meterline.yaml references (meterline secrets iam-policy)"
  policy      = jsonencode(local.secrets_policy)
  tags        = local.tags
}

resource "aws_iam_role_policy_attachment" "secrets" {
  for_each   = local.task_roles
  role       = aws_iam_role.task[each.key].name
  policy_arn = aws_iam_policy.secrets.arn
}

# The collector writes the ledger (Parquet parts, compaction, retention) under ledger/.
data "aws_iam_policy_document" "collector" {
  statement {
    sid       = "LedgerList"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.ledger.arn]
  }
  statement {
    sid       = "LedgerWrite"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.ledger.arn}/ledger/*"]
  }
  statement {
    sid       = "LedgerKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

# Analytics and the dashboard read the ledger and keep the marts and alarm state on EFS.
data "aws_iam_policy_document" "reader" {
  statement {
    sid       = "LedgerList"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.ledger.arn]
  }
  statement {
    sid       = "LedgerRead"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.ledger.arn}/ledger/*"]
  }
  statement {
    sid       = "LedgerKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
  statement {
    sid       = "StateVolume"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.state.arn]
    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.state.arn]
    }
  }
}

# `meterline keys apply --write-keys-to aws-secretsmanager://<name>/agent-keys` stores minted keys.
data "aws_iam_policy_document" "keys" {
  statement {
    sid       = "WriteMintedKeys"
    actions   = ["secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:TagResource"]
    resources = ["arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:${local.name}/agent-keys/*"]
  }
}

resource "aws_iam_role_policy" "collector" {
  name   = "ledger-write"
  role   = aws_iam_role.task["collector"].id
  policy = data.aws_iam_policy_document.collector.json
}

resource "aws_iam_role_policy" "reader" {
  for_each = toset(["analytics", "dashboard"])
  name     = "ledger-read"
  role     = aws_iam_role.task[each.key].id
  policy   = data.aws_iam_policy_document.reader.json
}

resource "aws_iam_role_policy" "keys" {
  name   = "minted-keys"
  role   = aws_iam_role.task["keys"].id
  policy = data.aws_iam_policy_document.keys.json
}

# The execution role pulls the image and writes the logs (and, with span_export, hands the
# sidecar its secrets). It reads nothing else.
resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  count = var.span_export == null ? 0 : 1
  statement {
    sid     = "SidecarSecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = compact([
      aws_secretsmanager_secret.this["ingest-tokens"].arn,
      var.span_export.headers_secret_arn,
    ])
  }
  statement {
    sid       = "SidecarSecretsKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  count  = var.span_export == null ? 0 : 1
  name   = "sidecar-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets[0].json
}

# EventBridge starts the scheduled analytics runs and the keys task after a gateway deploy.
data "aws_iam_policy_document" "events_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "events" {
  name               = "${local.name}-events"
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "events" {
  statement {
    sid       = "RunTasks"
    actions   = ["ecs:RunTask"]
    resources = [for k in ["analytics", "alarms", "keys"] : aws_ecs_task_definition.this[k].arn]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }
  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn, aws_iam_role.task["analytics"].arn, aws_iam_role.task["keys"].arn]
  }
}

resource "aws_iam_role_policy" "events" {
  name   = "run-tasks"
  role   = aws_iam_role.events.id
  policy = data.aws_iam_policy_document.events.json
}
