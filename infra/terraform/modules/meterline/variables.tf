# ---- identity -------------------------------------------------------------------------------

variable "tenant" {
  type        = string
  description = "Tenant id: the first part of every name (`<tenant>-meterline-<env>[-suffix]`) and the config's `tenant` (usage records carry it)."
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,9}$", var.tenant))
    error_message = "tenant: 1-10 lower-case letters or digits, starting with a letter (names stay within AWS's 32-character limits)."
  }
}

variable "env" {
  type        = string
  description = "Environment (dev, stage, prod, ...): the last part of every name and the config's `env`."
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,4}$", var.env))
    error_message = "env: 1-5 lower-case letters or digits, starting with a letter."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource, beside Tenant, Environment, Application and ManagedBy."
  default     = {}
}

# ---- network --------------------------------------------------------------------------------

variable "vpc_id" {
  type        = string
  description = "VPC every resource is placed in."
}

variable "public_subnet_ids" {
  type        = list(string)
  description = "Subnets of the internet-facing ALB (two or more availability zones)."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Subnets of the tasks, the collector's NLB, PostgreSQL and Redis (two or more availability zones; egress to the providers through NAT or endpoints)."
}

variable "alb_ingress_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to reach the ALB on 80/443 (agents and people). The WAF allow-list narrows it further when set."
}

# ---- image and config -----------------------------------------------------------------------

variable "image" {
  type        = string
  description = "The Meterline image (infra/docker/Dockerfile), by digest: `<account>.dkr.ecr.<region>.amazonaws.com/meterline@sha256:...`."
}

variable "timezone" {
  type        = string
  description = "The config's `timezone`: day and month windows of limits, budgets, marts and the Athena queries."
  default     = "UTC"
}

variable "models" {
  type = list(object({
    model_name   = string
    model        = string
    provider_key = optional(string)
    api_base     = optional(string)
    params       = optional(map(string), {})
  }))
  description = "The config's `model_list`: LiteLLM model names; `provider_key` names an entry of `provider_keys`, whose secret becomes the deployment's `api_key` reference."
}

variable "provider_keys" {
  type = map(object({
    secret_arn  = string
    json_key    = optional(string)
    kms_key_arn = optional(string)
  }))
  description = "Provider API keys already in Secrets Manager, by name: the secret's ARN, the JSON field holding the key (null: the whole secret string) and the customer-managed KMS key it is encrypted with (null: aws/secretsmanager). Holds references, never keys."
  default     = {}
}

variable "config" {
  type        = any
  description = "Further meterline.yaml sections merged over what the module renders: agents, teams, budgets, alerts, router_settings, response_cache, ... (secret values as references; an aws-secretsmanager:// reference here must also be listed in `extra_secret_arns` so the task role may read it)."
  default     = {}
}

variable "extra_secret_arns" {
  type = map(object({
    secret_arn  = string
    kms_key_arn = optional(string)
  }))
  description = "Other Secrets Manager secrets `config` references (alert webhooks, pre-issued agent keys), by name; the task roles may read them."
  default     = {}
}

# ---- the ALB --------------------------------------------------------------------------------

variable "acm_certificate_arn" {
  type        = string
  description = "ACM certificate of the ALB's HTTPS listener (covering `gateway_hostname` and `dashboard_hostname`). Null only with `allow_plaintext_alb = true`."
  default     = null
}

variable "allow_plaintext_alb" {
  type        = bool
  description = "Serve the gateway on plain HTTP when no certificate is given (agents' keys cross the network in clear; for a sandbox only). No dashboard then: ALB authentication needs HTTPS."
  default     = false
}

variable "gateway_hostname" {
  type        = string
  description = "Host name agents call (`https://<gateway_hostname>/v1`); also the ALB's default route."
}

variable "dashboard_hostname" {
  type        = string
  description = "Host name of the finance dashboard, behind the ALB's OIDC or Cognito authentication."
}

variable "dashboard_cognito" {
  type = object({
    user_pool_arn       = string
    user_pool_client_id = string
    user_pool_domain    = string
  })
  description = "Cognito user pool that authenticates dashboard users at the ALB (give this or `dashboard_oidc`)."
  default     = null
}

variable "dashboard_oidc" {
  type = object({
    issuer                 = string
    authorization_endpoint = string
    token_endpoint         = string
    user_info_endpoint     = string
    client_id              = string
  })
  description = "OIDC identity provider that authenticates dashboard users at the ALB (give this or `dashboard_cognito`); its client secret is `dashboard_oidc_client_secret`."
  default     = null
}

variable "dashboard_oidc_client_secret" {
  type        = string
  description = "Client secret of `dashboard_oidc` (null with Cognito). The ALB API takes it as a value, so it is in the Terraform state: keep the state encrypted."
  sensitive   = true
}

variable "waf" {
  type = object({
    enabled             = optional(bool, true)
    allowed_cidrs       = optional(list(string), [])
    rate_limit_per_5min = optional(number, 6000)
    managed_rule_groups = optional(list(string), ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesAmazonIpReputationList"])
  })
  description = "WAF on the ALB: an IP allow-list (empty: every address), a rate rule per client IP, AWS managed rule groups besides AWSManagedRulesKnownBadInputsRuleSet, which is always on (the common set's body-size rule counts only: prompts are large)."
  default     = {}
}

# ---- the collector --------------------------------------------------------------------------

variable "collector_certificate_arn" {
  type        = string
  description = "ACM certificate of the collector's internal NLB TLS listeners (4318, 4317), covering `collector_hostname`. Null only with `allow_plaintext_collector = true`."
  default     = null
}

variable "collector_hostname" {
  type        = string
  description = "Name the gateways reach the collector by (`https://<collector_hostname>:4318`); the module writes it into `private_zone_id`."
}

variable "private_zone_id" {
  type        = string
  description = "Route 53 private hosted zone (of `vpc_id`) that gets the `collector_hostname` alias record."
}

variable "allow_plaintext_collector" {
  type        = bool
  description = "Let gateways send usage records to the collector over plain HTTP inside the VPC when no collector certificate is given (the ingest tokens then cross the VPC in clear)."
  default     = false
}

# ---- sizes ----------------------------------------------------------------------------------

variable "gateway" {
  type = object({
    cpu                 = optional(number, 1024)
    memory              = optional(number, 2048)
    min_count           = optional(number, 2)
    max_count           = optional(number, 10)
    cpu_target          = optional(number, 60)
    requests_per_target = optional(number, 1000)
  })
  description = "Gateway service: task size, task count bounds, target CPU % and ALB requests per target per minute the autoscaling keeps."
  default     = {}
}

variable "collector" {
  type = object({
    cpu    = optional(number, 1024)
    memory = optional(number, 2048)
  })
  description = "Collector service: task size. It runs one task: each collector deduplicates only against its own index today (see the module README)."
  default     = {}
}

variable "dashboard" {
  type = object({
    cpu    = optional(number, 512)
    memory = optional(number, 1024)
  })
  description = "Dashboard service: task size (one task)."
  default     = {}
}

variable "analytics" {
  type = object({
    cpu             = optional(number, 1024)
    memory          = optional(number, 4096)
    schedule        = optional(string, "rate(5 minutes)")
    alarms_schedule = optional(string, "rate(15 minutes)")
  })
  description = "Analytics: task size, the EventBridge schedule of the mart run (`meterline analytics run`) and of the budget alarms (`meterline alarms run`)."
  default     = {}
}

variable "database" {
  type = object({
    instance_class    = optional(string, "db.t4g.small")
    allocated_storage = optional(number, 20)
    engine_version    = optional(string, "16")
    multi_az          = optional(bool, true)
    backup_days       = optional(number, 7)
  })
  description = "RDS PostgreSQL of the shared key store (`key_store.database_url`)."
  default     = {}
}

variable "redis" {
  type = object({
    node_type      = optional(string, "cache.t4g.small")
    engine         = optional(string, "valkey")
    engine_version = optional(string, "7.2")
    replicas       = optional(number, 1)
    snapshot_days  = optional(number, 7)
  })
  description = "ElastiCache (Valkey or Redis) of the shared quota counters: a primary and `replicas` replicas with Multi-AZ automatic failover, noeviction, daily snapshots (ElastiCache offers no append-only file; the replica is the durability)."
  default     = {}
}

# ---- data -----------------------------------------------------------------------------------

variable "retention_days" {
  type        = number
  description = "Days the ledger is kept: the config's `storage.retention_days` (the collector's retention) and the bucket's lifecycle expiry of usage/ and spans/ (one day later)."
  default     = 400
}

variable "log_retention_days" {
  type        = number
  description = "CloudWatch Logs retention of every task's log group."
  default     = 365
}

variable "span_export" {
  type = object({
    endpoint           = string
    headers_secret_arn = optional(string)
    collector_image    = string
  })
  description = "Also export the gateway's spans over OTLP/HTTP to another backend (Honeycomb, Datadog, Tempo, ...) through an OpenTelemetry Collector sidecar in the gateway task (`collector_image`, pinned); `headers_secret_arn`: a secret whose value is sent as the backend's Authorization header. Null: spans go to the Meterline collector only. Prompt and completion text are never captured either way (`telemetry.capture_content: false`)."
  default     = null
}

# ---- tripwires ------------------------------------------------------------------------------

variable "deletion_protection" {
  type        = bool
  description = "Tripwire 1: deletion protection on PostgreSQL and the ALB. Set false and apply before a destroy."
  default     = true
}

variable "skip_final_snapshot" {
  type        = bool
  description = "Tripwire 2: false takes a final snapshot of PostgreSQL and Redis when they are destroyed. Set true and apply before destroying an environment whose keys you do not need."
  default     = false
}

variable "force_destroy_ledger" {
  type        = bool
  description = "Tripwire 3: false refuses to destroy a ledger bucket that still holds objects (the bill's only record). Set true and apply before a destroy that should delete the ledger."
  default     = false
}
