output "gateway_url" {
  description = "Base URL agents call."
  value       = module.meterline.gateway_url
}

output "dashboard_url" {
  description = "The finance dashboard."
  value       = module.meterline.dashboard_url
}

output "alb_dns_name" {
  description = "Point llm.<domain> and meterline.<domain> here."
  value       = module.meterline.alb_dns_name
}

output "athena_workgroup" {
  description = "Athena workgroup with the spend queries."
  value       = module.meterline.athena_workgroup
}

output "secrets_policy_json" {
  description = "What the task roles may read."
  value       = module.meterline.secrets_policy_json
}
