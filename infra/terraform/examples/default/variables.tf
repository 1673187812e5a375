variable "region" {
  type        = string
  description = "AWS region to deploy into."
  default     = "us-east-1"
}

variable "tenant" {
  type        = string
  description = "Tenant id (module input `tenant`)."
  default     = "acme"
}

variable "env" {
  type        = string
  description = "Environment (module input `env`)."
  default     = "prod"
}

variable "vpc_id" {
  type        = string
  description = "VPC to deploy into."
}

variable "public_subnet_ids" {
  type        = list(string)
  description = "Public subnets of the ALB."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets of the tasks and data stores."
}

variable "private_zone_id" {
  type        = string
  description = "Private Route 53 zone of the VPC (gets the collector's record)."
}

variable "domain" {
  type        = string
  description = "Domain the host names are made under (llm., meterline., collector.)."
}

variable "image" {
  type        = string
  description = "The Meterline image by digest (ECR)."
}

variable "acm_certificate_arn" {
  type        = string
  description = "ACM certificate covering *.<domain>."
}

variable "cognito_user_pool_arn" {
  type        = string
  description = "Cognito user pool of the dashboard's users."
}

variable "cognito_client_id" {
  type        = string
  description = "Cognito app client of the ALB."
}

variable "cognito_domain" {
  type        = string
  description = "Cognito hosted UI domain prefix."
}

variable "provider_keys_secret_arn" {
  type        = string
  description = "ARN of the Secrets Manager secret holding {\"OPENAI_API_KEY\": ..., \"ANTHROPIC_API_KEY\": ...}."
}

variable "waf_allowed_cidrs" {
  type        = list(string)
  description = "CIDRs the WAF lets through (empty: all)."
  default     = []
}
