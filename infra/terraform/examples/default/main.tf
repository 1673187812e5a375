# The default deployment: one tenant, one environment, OpenAI and Anthropic keys already in
# Secrets Manager, the dashboard behind Cognito. `terraform apply` with a terraform.tfvars
# holding the network ids, the image digest and the certificates.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5, < 4.0"
    }
  }
}

provider "aws" {
  region = var.region
}

module "meterline" {
  source = "../../modules/meterline"

  tenant = var.tenant
  env    = var.env
  tags   = { CostCenter = "platform" }

  vpc_id             = var.vpc_id
  public_subnet_ids  = var.public_subnet_ids
  private_subnet_ids = var.private_subnet_ids
  alb_ingress_cidrs  = ["0.0.0.0/0"]

  image    = var.image
  timezone = "Asia/Shanghai"

  acm_certificate_arn = var.acm_certificate_arn
  gateway_hostname    = "llm.${var.domain}"
  dashboard_hostname  = "meterline.${var.domain}"
  dashboard_cognito = {
    user_pool_arn       = var.cognito_user_pool_arn
    user_pool_client_id = var.cognito_client_id
    user_pool_domain    = var.cognito_domain
  }
  dashboard_oidc_client_secret = null

  collector_certificate_arn = var.acm_certificate_arn
  collector_hostname        = "collector.${var.domain}"
  private_zone_id           = var.private_zone_id

  provider_keys = {
    openai    = { secret_arn = var.provider_keys_secret_arn, json_key = "OPENAI_API_KEY" }
    anthropic = { secret_arn = var.provider_keys_secret_arn, json_key = "ANTHROPIC_API_KEY" }
  }
  models = [
    { model_name = "gpt-4o-mini", model = "openai/gpt-4o-mini", provider_key = "openai" },
    { model_name = "gpt-4o", model = "openai/gpt-4o", provider_key = "openai" },
    { model_name = "claude", model = "anthropic/claude-sonnet-4-5", provider_key = "anthropic" },
  ]

  config = {
    router_settings = { routing_strategy = "simple-shuffle", num_retries = 2, timeout = 60, fallbacks = [{ gpt-4o = ["gpt-4o-mini"] }] }
    agents = [
      { id = "support-bot", team = "support", project = "helpdesk", models = ["gpt-4o-mini"], limits = { rpm = 60, usd_per_day = 20 } },
      { id = "research-agent", team = "research", limits = { usd_per_month = 400 } },
    ]
    teams   = [{ id = "support", limits = { usd_per_month = 1000 } }]
    budgets = [{ name = "support-monthly", scope = { team = "support" }, period = "month", amount_usd = 1000, thresholds = [50, 80, 100] }]
  }

  waf = { allowed_cidrs = var.waf_allowed_cidrs }
}
