# Optional WAF on the ALB: an IP allow-list, a rate rule per client IP, AWS managed rule groups.

locals {
  waf_allow_list = var.waf.enabled && length(var.waf.allowed_cidrs) > 0
}

resource "aws_wafv2_ip_set" "allowed" {
  count              = local.waf_allow_list ? 1 : 0
  name               = "${local.name}-allowed"
  scope              = "REGIONAL"
  ip_address_version = "IPV4"
  addresses          = var.waf.allowed_cidrs
  tags               = local.tags
}

resource "aws_wafv2_web_acl" "this" {
  count = var.waf.enabled ? 1 : 0
  name  = local.name
  scope = "REGIONAL"
  tags  = local.tags

  default_action {
    allow {}
  }

  dynamic "rule" {
    for_each = local.waf_allow_list ? [1] : []
    content {
      name     = "allow-list"
      priority = 0
      action {
        block {}
      }
      statement {
        not_statement {
          statement {
            ip_set_reference_statement {
              arn = aws_wafv2_ip_set.allowed[0].arn
            }
          }
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.name}-allow-list"
        sampled_requests_enabled   = true
      }
    }
  }

  rule {
    name     = "rate-per-ip"
    priority = 1
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.waf.rate_limit_per_5min
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-rate"
      sampled_requests_enabled   = true
    }
  }

  # Always on: bad inputs, Log4j (CVE-2021-44228) among them.
  rule {
    name     = "AWSManagedRulesKnownBadInputsRuleSet"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  dynamic "rule" {
    for_each = { for i, group in var.waf.managed_rule_groups : group => i if group != "AWSManagedRulesKnownBadInputsRuleSet" }
    content {
      name     = rule.key
      priority = 10 + rule.value
      override_action {
        none {}
      }
      statement {
        managed_rule_group_statement {
          name        = rule.key
          vendor_name = "AWS"
          # Prompts are large: the common set's 8 KB body limit only counts, never blocks.
          dynamic "rule_action_override" {
            for_each = rule.key == "AWSManagedRulesCommonRuleSet" ? ["SizeRestrictions_BODY"] : []
            content {
              name = rule_action_override.value
              action_to_use {
                count {}
              }
            }
          }
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.name}-${rule.key}"
        sampled_requests_enabled   = true
      }
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = local.name
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "this" {
  count        = var.waf.enabled ? 1 : 0
  resource_arn = aws_lb.this.arn
  web_acl_arn  = aws_wafv2_web_acl.this[0].arn
}

resource "aws_cloudwatch_log_group" "waf" {
  count             = var.waf.enabled ? 1 : 0
  name              = "aws-waf-logs-${local.name}" # WAF requires the prefix
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  count                   = var.waf.enabled ? 1 : 0
  resource_arn            = aws_wafv2_web_acl.this[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]
  redacted_fields {
    single_header {
      name = "authorization" # agents' keys never reach the WAF log
    }
  }
}
