output "gateway_url" {
  description = "Base URL agents call (`<gateway_url>/v1` with the OpenAI SDK)."
  value       = "${local.alb_tls ? "https" : "http"}://${var.gateway_hostname}"
}

output "dashboard_url" {
  description = "The finance dashboard (behind the ALB's authentication); null without TLS."
  value       = local.alb_tls ? "https://${var.dashboard_hostname}" : null
}

output "alb_dns_name" {
  description = "DNS name of the ALB: point gateway_hostname and dashboard_hostname at it (alias records)."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone id of the ALB, for alias records."
  value       = aws_lb.this.zone_id
}

output "collector_endpoint" {
  description = "OTLP/HTTP endpoint of the collector inside the VPC (agents' own SDKs may export spans here with the agents ingest token)."
  value       = local.meterline_config.telemetry.collector
}

output "ecs_cluster_name" {
  description = "ECS cluster running the services and tasks."
  value       = aws_ecs_cluster.this.name
}

output "ledger_bucket" {
  description = "S3 bucket of the ledger (Parquet under ledger/) and Athena's results (athena-results/)."
  value       = aws_s3_bucket.ledger.bucket
}

output "glue_database" {
  description = "Glue database with the usage and spans tables."
  value       = aws_glue_catalog_database.this.name
}

output "athena_workgroup" {
  description = "Athena workgroup holding the spend named queries."
  value       = aws_athena_workgroup.this.name
}

output "athena_named_queries" {
  description = "Named query ids by name (spend by agent, team and model, per day and month)."
  value       = { for name, query in aws_athena_named_query.spend : name => query.id }
}

output "secret_arns" {
  description = "The generated secrets by name (master-key, key-hash-secret, jwt-signing-key, ingest-tokens, database-url, redis-url)."
  value       = { for name, secret in aws_secretsmanager_secret.this : name => secret.arn }
}

output "agent_keys_prefix" {
  description = "Where `meterline keys apply` writes newly minted agent keys (one secret per agent)."
  value       = "${local.name}/agent-keys/"
}

output "secrets_policy_json" {
  description = "The task roles' secrets policy: equal to `meterline secrets iam-policy` for the rendered config."
  value       = jsonencode(local.secrets_policy)
}

output "config_yaml" {
  description = "The meterline.yaml every task runs with (secret references only, no values)."
  value       = local.config_yaml
}

output "kms_key_arn" {
  description = "The module's customer-managed KMS key."
  value       = aws_kms_key.this.arn
}
