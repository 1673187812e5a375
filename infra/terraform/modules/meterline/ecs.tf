# One cluster; every task runs the one image with a different `meterline` verb. The config
# travels in the task definition as METERLINE_CONFIG_YAML (references only, no secret values)
# and each command starts with `--config env:METERLINE_CONFIG_YAML`.

locals {
  config_arg = ["--config", "env:METERLINE_CONFIG_YAML"]

  # What each task runs: the verb, its port(s), its role, its security group, and whether it
  # mounts the shared state volume. tests/infra/test_tasks.py checks the verbs against the CLI
  # and the ports against the components' defaults.
  tasks = {
    gateway = {
      command = concat(local.config_arg, ["gateway", "--host", "0.0.0.0", "--port", tostring(local.ports.gateway)])
      ports   = [local.ports.gateway]
      health  = "http://127.0.0.1:${local.ports.gateway}/health/liveliness"
      role    = "gateway"
      cpu     = var.gateway.cpu
      memory  = var.gateway.memory
      state   = false
    }
    collector = {
      command = concat(local.config_arg, ["collector", "--host", "0.0.0.0", "--port", tostring(local.ports.collector_http), "--grpc-port", tostring(local.ports.collector_grpc)])
      ports   = [local.ports.collector_http, local.ports.collector_grpc]
      health  = "http://127.0.0.1:${local.ports.collector_http}/health"
      role    = "collector"
      cpu     = var.collector.cpu
      memory  = var.collector.memory
      state   = false
    }
    dashboard = {
      command = concat(local.config_arg, ["dashboard", "--host", "0.0.0.0", "--port", tostring(local.ports.dashboard)])
      ports   = [local.ports.dashboard]
      health  = "http://127.0.0.1:${local.ports.dashboard}/_stcore/health"
      role    = "dashboard"
      cpu     = var.dashboard.cpu
      memory  = var.dashboard.memory
      state   = true
    }
    analytics = {
      command = concat(local.config_arg, ["analytics", "run"])
      ports   = []
      health  = null
      role    = "analytics"
      cpu     = var.analytics.cpu
      memory  = var.analytics.memory
      state   = true
    }
    alarms = {
      command = concat(local.config_arg, ["alarms", "run"])
      ports   = []
      health  = null
      role    = "analytics"
      cpu     = 256
      memory  = 512
      state   = true
    }
    keys = {
      command = concat(local.config_arg, ["keys", "apply", "--write-keys-to", "aws-secretsmanager://${local.name}/agent-keys"])
      ports   = []
      health  = null
      role    = "keys"
      cpu     = 256
      memory  = 512
      state   = false
    }
  }

  # With span_export, the gateway posts its telemetry to an OpenTelemetry Collector sidecar
  # that forwards usage records and spans to the Meterline collector and spans to the extra
  # backend, from a queue on the task's disk.
  sidecar_port = 4319
  otel_config = var.span_export == null ? null : yamlencode({
    extensions = { file_storage = { directory = "/tmp/otel-queue", create_directory = true } }
    receivers  = { otlp = { protocols = { http = { endpoint = "127.0.0.1:${local.sidecar_port}" } } } }
    processors = { batch = {} }
    exporters = {
      "otlphttp/meterline" = {
        endpoint         = local.meterline_config.telemetry.collector
        headers          = { Authorization = "Bearer $${env:METERLINE_INGEST_TOKEN}" }
        sending_queue    = { storage = "file_storage" }
        retry_on_failure = { max_elapsed_time = "0s" }
      }
      "otlphttp/extra" = {
        endpoint = var.span_export.endpoint
        headers  = var.span_export.headers_secret_arn == null ? {} : { Authorization = "$${env:SPAN_EXPORT_AUTHORIZATION}" }
      }
    }
    service = {
      extensions = ["file_storage"]
      pipelines = {
        logs   = { receivers = ["otlp"], processors = ["batch"], exporters = ["otlphttp/meterline"] }
        traces = { receivers = ["otlp"], processors = ["batch"], exporters = ["otlphttp/meterline", "otlphttp/extra"] }
      }
    }
  })

  environment = {
    gateway = merge(
      tomap({ METERLINE_CONFIG_YAML = local.config_yaml }),
      var.span_export == null ? tomap({}) : tomap({ METERLINE_TELEMETRY__COLLECTOR = "http://127.0.0.1:${local.sidecar_port}" }),
    )
    state = tomap({ METERLINE_CONFIG_YAML = local.config_yaml, METERLINE_STORAGE__LOCAL_DIR = local.state_dir })
    other = tomap({ METERLINE_CONFIG_YAML = local.config_yaml })
  }

  containers = {
    for name, task in local.tasks : name => concat(
      [{
        name                   = name
        image                  = var.image
        essential              = true
        command                = task.command
        readonlyRootFilesystem = true
        user                   = "10001:10001"
        environment            = [for k, v in(name == "gateway" ? local.environment.gateway : task.state ? local.environment.state : local.environment.other) : { name = k, value = v }]
        portMappings           = [for port in task.ports : { containerPort = port, protocol = "tcp" }]
        healthCheck = task.health == null ? null : {
          command     = ["CMD", "/opt/meterline/bin/python", "-c", "import urllib.request; urllib.request.urlopen('${task.health}', timeout=2)"]
          interval    = 15
          timeout     = 5
          retries     = 3
          startPeriod = 30
        }
        # The root filesystem is read-only: the image's home (/var/lib/meterline, owned by uid
        # 10001, holding local_dir) and /tmp are task volumes, populated from the image.
        mountPoints = concat(
          [
            { sourceVolume = "home", containerPath = local.home_dir, readOnly = false },
            { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
          ],
          task.state ? [{ sourceVolume = "state", containerPath = local.state_dir, readOnly = false }] : [],
        )
        stopTimeout = 60
        dependsOn   = name == "gateway" && var.span_export != null ? [{ containerName = "otel", condition = "START" }] : null
        logConfiguration = {
          logDriver = "awslogs"
          options = {
            awslogs-group         = aws_cloudwatch_log_group.this[name].name
            awslogs-region        = local.region
            awslogs-stream-prefix = name
          }
        }
      }],
      name == "gateway" && var.span_export != null ? [{
        name                   = "otel"
        image                  = var.span_export.collector_image
        essential              = true
        command                = ["--config=env:OTELCOL_CONFIG"]
        readonlyRootFilesystem = true
        environment            = [{ name = "OTELCOL_CONFIG", value = local.otel_config }]
        secrets = concat(
          [{ name = "METERLINE_INGEST_TOKEN", valueFrom = "${aws_secretsmanager_secret.this["ingest-tokens"].arn}:gateways::" }],
          var.span_export.headers_secret_arn == null ? [] : [{ name = "SPAN_EXPORT_AUTHORIZATION", valueFrom = var.span_export.headers_secret_arn }],
        )
        mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
        logConfiguration = {
          logDriver = "awslogs"
          options = {
            awslogs-group         = aws_cloudwatch_log_group.this[name].name
            awslogs-region        = local.region
            awslogs-stream-prefix = "otel"
          }
        }
      }] : [],
    )
  }
}

resource "aws_cloudwatch_log_group" "this" {
  for_each          = toset(concat(keys(local.tasks), ["redis"]))
  name              = "/meterline/${local.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_ecs_cluster" "this" {
  name = local.name
  tags = local.tags

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_task_definition" "this" {
  for_each                 = local.tasks
  family                   = "${local.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task[each.value.role].arn
  container_definitions    = jsonencode(local.containers[each.key])
  tags                     = local.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  ephemeral_storage {
    size_in_gib = each.key == "collector" ? 100 : 21 # the collector's write-ahead log
  }

  volume {
    name = "home"
  }
  volume {
    name = "tmp"
  }

  dynamic "volume" {
    for_each = each.value.state ? [1] : []
    content {
      name = "state"
      efs_volume_configuration {
        file_system_id     = aws_efs_file_system.state.id
        transit_encryption = "ENABLED"
        authorization_config {
          access_point_id = aws_efs_access_point.state.id
          iam             = "ENABLED"
        }
      }
    }
  }
}

locals {
  services = {
    gateway = {
      desired = var.gateway.min_count
      sg      = aws_security_group.gateway.id
      # Rolling: new tasks start before old ones stop; a deploy that does not get healthy rolls back.
      min_healthy = 100
      max_percent = 200
      targets     = [{ tg = aws_lb_target_group.gateway.arn, port = local.ports.gateway }]
    }
    collector = {
      desired = 1
      sg      = aws_security_group.collector.id
      # One collector at a time (it deduplicates against its own index): the old task drains
      # and stops before the new one starts; gateways keep their spool meanwhile.
      min_healthy = 0
      max_percent = 100
      targets = [
        { tg = aws_lb_target_group.collector["http"].arn, port = local.ports.collector_http },
        { tg = aws_lb_target_group.collector["grpc"].arn, port = local.ports.collector_grpc },
      ]
    }
    dashboard = {
      desired     = 1
      sg          = aws_security_group.dashboard.id
      min_healthy = 100
      max_percent = 200
      targets     = [{ tg = aws_lb_target_group.dashboard.arn, port = local.ports.dashboard }]
    }
  }
}

resource "aws_ecs_service" "this" {
  for_each                           = local.services
  name                               = each.key
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this[each.key].arn
  desired_count                      = each.value.desired
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = each.value.min_healthy
  deployment_maximum_percent         = each.value.max_percent
  health_check_grace_period_seconds  = 60
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"
  tags                               = local.tags

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [each.value.sg]
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = each.value.targets
    content {
      target_group_arn = load_balancer.value.tg
      container_name   = each.key
      container_port   = load_balancer.value.port
    }
  }

  lifecycle {
    ignore_changes = [desired_count] # the gateway's autoscaling owns it
  }

  depends_on = [aws_lb_listener.http, aws_lb_listener.https, aws_lb_listener.collector]
}

# The gateway scales on CPU and on ALB requests per target, whichever asks for more tasks.
resource "aws_appautoscaling_target" "gateway" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this["gateway"].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.gateway.min_count
  max_capacity       = var.gateway.max_count
  tags               = local.tags
}

resource "aws_appautoscaling_policy" "gateway_cpu" {
  name               = "${local.name}-gateway-cpu"
  service_namespace  = aws_appautoscaling_target.gateway.service_namespace
  resource_id        = aws_appautoscaling_target.gateway.resource_id
  scalable_dimension = aws_appautoscaling_target.gateway.scalable_dimension
  policy_type        = "TargetTrackingScaling"

  target_tracking_scaling_policy_configuration {
    target_value       = var.gateway.cpu_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "gateway_requests" {
  name               = "${local.name}-gateway-requests"
  service_namespace  = aws_appautoscaling_target.gateway.service_namespace
  resource_id        = aws_appautoscaling_target.gateway.resource_id
  scalable_dimension = aws_appautoscaling_target.gateway.scalable_dimension
  policy_type        = "TargetTrackingScaling"

  target_tracking_scaling_policy_configuration {
    target_value       = var.gateway.requests_per_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.this.arn_suffix}/${aws_lb_target_group.gateway.arn_suffix}"
    }
  }
}
