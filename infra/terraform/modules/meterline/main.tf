# Names, tags, and the one meterline.yaml every task runs with.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_vpc" "this" {
  id = var.vpc_id
}

locals {
  name       = "${var.tenant}-meterline-${var.env}"
  glue_name  = "${var.tenant}_meterline_${var.env}"
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  tags = merge(var.tags, {
    Tenant      = var.tenant
    Environment = var.env
    Application = "meterline"
    ManagedBy   = "terraform"
  })

  alb_tls       = var.acm_certificate_arn != null
  collector_tls = var.collector_certificate_arn != null

  # Where things live inside the containers (infra/docker/Dockerfile: WORKDIR /var/lib/meterline).
  home_dir  = "/var/lib/meterline"       # the image's WORKDIR and HOME (uid 10001)
  local_dir = "/var/lib/meterline/local" # task storage under it: spool, WAL, caches
  state_dir = "/mnt/meterline-state"     # EFS: marts and alarm state, shared by analytics and dashboard
  ledger    = "s3://${aws_s3_bucket.ledger.bucket}/ledger"

  # The default ports of the components (meterline/cli/main.py); tests/infra checks them.
  ports = {
    gateway        = 4000
    collector_http = 4318
    collector_grpc = 4317
    dashboard      = 8501
  }

  # Every aws-secretsmanager:// reference the rendered config holds, by name. The config below
  # takes its references from here only, and the task roles' secrets policy is built from the
  # same ARNs (tests/infra/test_iam.py compares it with `meterline secrets iam-policy`).
  generated_references = {
    master_key      = "aws-secretsmanager://${aws_secretsmanager_secret.this["master-key"].arn}"
    hash_secret     = "aws-secretsmanager://${aws_secretsmanager_secret.this["key-hash-secret"].arn}"
    jwt_signing_key = "aws-secretsmanager://${aws_secretsmanager_secret.this["jwt-signing-key"].arn}"
    database_url    = "aws-secretsmanager://${aws_secretsmanager_secret.this["database-url"].arn}"
    redis_url       = "aws-secretsmanager://${aws_secretsmanager_secret.this["redis-url"].arn}"
    ingest_gateway  = "aws-secretsmanager://${aws_secretsmanager_secret.this["ingest-tokens"].arn}#gateways"
    ingest_agents   = "aws-secretsmanager://${aws_secretsmanager_secret.this["ingest-tokens"].arn}#agents"
  }
  provider_references = { for name, key in var.provider_keys : "provider/${name}" => "aws-secretsmanager://${key.secret_arn}${key.json_key == null ? "" : "#${key.json_key}"}" }
  secret_references   = merge(local.generated_references, local.provider_references)

  # The sections the module owns; `var.config` supplies the rest (agents, teams, budgets, ...).
  owned_sections = ["env", "tenant", "timezone", "model_list", "general_settings", "key_store", "quota_store", "telemetry", "storage", "collector", "dashboard"]

  rendered_config = {
    env      = var.env
    tenant   = var.tenant
    timezone = var.timezone
    model_list = [for m in var.models : {
      model_name = m.model_name
      litellm_params = merge(
        m.params,
        { model = m.model },
        m.provider_key == null ? {} : { api_key = local.secret_references["provider/${m.provider_key}"] },
        m.api_base == null ? {} : { api_base = m.api_base },
      )
    }]
    general_settings = { master_key = local.secret_references.master_key }
    key_store = {
      database_url    = local.secret_references.database_url
      hash_secret     = local.secret_references.hash_secret
      jwt_signing_key = local.secret_references.jwt_signing_key
    }
    quota_store = { redis_url = local.secret_references.redis_url }
    telemetry = {
      collector       = "${local.collector_tls ? "https" : "http"}://${var.collector_hostname}:${local.ports.collector_http}"
      collector_token = local.secret_references.ingest_gateway
      capture_content = false
    }
    storage = {
      data_dir       = local.ledger
      local_dir      = local.local_dir
      s3_region      = local.region
      retention_days = var.retention_days
    }
    collector = {
      # TLS ends at the internal NLB; the tasks accept only the NLB's and the VPC's traffic.
      ingest_tokens = [
        { name = "gateways", token = local.secret_references.ingest_gateway, scopes = ["usage", "spans"] },
        { name = "agents", token = local.secret_references.ingest_agents, scopes = ["spans"] },
      ]
    }
    # The dashboard has no login of its own: the ALB authenticates (OIDC or Cognito) before it.
    dashboard = { allow_unauthenticated = true }
  }

  meterline_config = merge(var.config, local.rendered_config)
  config_yaml      = yamlencode(local.meterline_config)
}

resource "terraform_data" "config_checks" {
  input = sha256(local.config_yaml)
  lifecycle {
    precondition {
      condition     = length(setintersection(keys(var.config), local.owned_sections)) == 0
      error_message = "config: the module renders ${join(", ", local.owned_sections)} itself; remove ${join(", ", setintersection(keys(var.config), local.owned_sections))} from var.config."
    }
    precondition {
      condition     = alltrue([for m in var.models : m.provider_key == null || contains(keys(var.provider_keys), coalesce(m.provider_key, "-"))])
      error_message = "models: every provider_key must name an entry of provider_keys."
    }
  }
}
