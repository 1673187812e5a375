# Tasks EventBridge starts: the mart run and the budget alarms on a schedule, and
# `meterline keys apply` once after every gateway deployment completes (a new config, a new
# image), writing newly minted agent keys to Secrets Manager under <name>/agent-keys/.

locals {
  scheduled = {
    analytics = var.analytics.schedule
    alarms    = var.analytics.alarms_schedule
  }
}

resource "aws_cloudwatch_event_rule" "scheduled" {
  for_each            = local.scheduled
  name                = "${local.name}-${each.key}"
  description         = "meterline ${join(" ", slice(local.tasks[each.key].command, 2, length(local.tasks[each.key].command)))} on ${each.value}"
  schedule_expression = each.value
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "scheduled" {
  for_each = local.scheduled
  rule     = aws_cloudwatch_event_rule.scheduled[each.key].name
  arn      = aws_ecs_cluster.this.arn
  role_arn = aws_iam_role.events.arn

  ecs_target {
    task_definition_arn = aws_ecs_task_definition.this[each.key].arn
    launch_type         = "FARGATE"
    platform_version    = "LATEST"
    task_count          = 1
    propagate_tags      = "TASK_DEFINITION"
    network_configuration {
      subnets          = var.private_subnet_ids
      security_groups  = [aws_security_group.analytics.id]
      assign_public_ip = false
    }
  }
}

resource "aws_cloudwatch_event_rule" "keys_after_deploy" {
  name        = "${local.name}-keys-apply"
  description = "meterline keys apply after each completed gateway deployment"
  tags        = local.tags
  event_pattern = jsonencode({
    source        = ["aws.ecs"]
    "detail-type" = ["ECS Deployment State Change"]
    resources     = [aws_ecs_service.this["gateway"].id]
    detail        = { eventName = ["SERVICE_DEPLOYMENT_COMPLETED"] }
  })
}

resource "aws_cloudwatch_event_target" "keys_after_deploy" {
  rule     = aws_cloudwatch_event_rule.keys_after_deploy.name
  arn      = aws_ecs_cluster.this.arn
  role_arn = aws_iam_role.events.arn

  ecs_target {
    task_definition_arn = aws_ecs_task_definition.this["keys"].arn
    launch_type         = "FARGATE"
    platform_version    = "LATEST"
    task_count          = 1
    propagate_tags      = "TASK_DEFINITION"
    network_configuration {
      subnets          = var.private_subnet_ids
      security_groups  = [aws_security_group.gateway.id]
      assign_public_ip = false
    }
  }
}
