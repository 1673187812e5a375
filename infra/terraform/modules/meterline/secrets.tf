# Secrets the module generates. Provider keys are not here: they stay in the secrets the caller
# names (var.provider_keys), referenced by ARN. Values generated here are in the Terraform state
# (random_password): keep the state encrypted and access-controlled.

locals {
  generated = {
    "master-key"      = "Admin API master key (general_settings.master_key)"
    "key-hash-secret" = "HMAC secret agent keys are hashed with (key_store.hash_secret)"
    "jwt-signing-key" = "HS256 key of POST /v1/auth/token (key_store.jwt_signing_key)"
    "ingest-tokens"   = "Collector ingest tokens, JSON {gateways, agents} (collector.ingest_tokens, telemetry.collector_token)"
    "database-url"    = "PostgreSQL URL of the key store (key_store.database_url)"
    "redis-url"       = "Redis URL of the quota counters (quota_store.redis_url)"
  }
}

resource "random_password" "this" {
  for_each = toset(["master-key", "key-hash-secret", "jwt-signing-key", "ingest-gateways", "ingest-agents", "database", "redis"])
  length   = 48
  special  = false # every value here is also safe inside a URL
}

resource "aws_secretsmanager_secret" "this" {
  for_each                = local.generated
  name                    = "${local.name}/${each.key}"
  description             = each.value
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 30
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "this" {
  for_each  = local.generated
  secret_id = aws_secretsmanager_secret.this[each.key].id
  secret_string = {
    "master-key"      = "sk-${random_password.this["master-key"].result}"
    "key-hash-secret" = random_password.this["key-hash-secret"].result
    "jwt-signing-key" = random_password.this["jwt-signing-key"].result
    "ingest-tokens" = jsonencode({
      gateways = random_password.this["ingest-gateways"].result
      agents   = random_password.this["ingest-agents"].result
    })
    "database-url" = "postgresql://meterline:${random_password.this["database"].result}@${aws_db_instance.keys.address}:${aws_db_instance.keys.port}/meterline?sslmode=require"
    "redis-url"    = "rediss://:${random_password.this["redis"].result}@${aws_elasticache_replication_group.quotas.primary_endpoint_address}:6379/0"
  }[each.key]
  lifecycle {
    # Rotation happens in Secrets Manager (README: the rotation story); a new version written
    # there is not reverted by the next apply.
    ignore_changes = [secret_string]
  }
}
