# PostgreSQL for the shared key store, Valkey/Redis for the shared quota counters, EFS for the
# marts and alarm state that analytics writes and the dashboard reads.

resource "aws_db_subnet_group" "keys" {
  name       = local.name
  subnet_ids = var.private_subnet_ids
  tags       = local.tags
}

resource "aws_db_parameter_group" "keys" {
  name   = "${local.name}-pg"
  family = "postgres${split(".", var.database.engine_version)[0]}"
  tags   = local.tags

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name = "${local.name}-rds-monitoring"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "keys" {
  identifier                          = local.name
  engine                              = "postgres"
  engine_version                      = var.database.engine_version
  instance_class                      = var.database.instance_class
  allocated_storage                   = var.database.allocated_storage
  max_allocated_storage               = var.database.allocated_storage * 5
  db_name                             = "meterline"
  username                            = "meterline"
  password                            = random_password.this["database"].result
  db_subnet_group_name                = aws_db_subnet_group.keys.name
  parameter_group_name                = aws_db_parameter_group.keys.name
  vpc_security_group_ids              = [aws_security_group.database.id]
  multi_az                            = var.database.multi_az
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.this.arn
  iam_database_authentication_enabled = true
  backup_retention_period             = var.database.backup_days
  copy_tags_to_snapshot               = true
  auto_minor_version_upgrade          = true
  publicly_accessible                 = false
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.this.arn
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = var.skip_final_snapshot
  final_snapshot_identifier           = "${local.name}-final"
  tags                                = local.tags

  lifecycle {
    ignore_changes = [password] # rotated with the database-url secret (README: rotation)
  }
}

resource "aws_elasticache_subnet_group" "quotas" {
  name       = local.name
  subnet_ids = var.private_subnet_ids
  tags       = local.tags
}

resource "aws_elasticache_parameter_group" "quotas" {
  name   = "${local.name}-quotas"
  family = "${var.redis.engine}${split(".", var.redis.engine_version)[0]}"
  tags   = local.tags

  # A counter evicted under memory pressure is a quota reset: refuse writes instead.
  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
}

resource "aws_elasticache_replication_group" "quotas" {
  replication_group_id       = "${local.name}-quotas"
  description                = "Meterline quota counters of ${local.name}"
  engine                     = var.redis.engine
  engine_version             = var.redis.engine_version
  node_type                  = var.redis.node_type
  num_cache_clusters         = 1 + var.redis.replicas
  automatic_failover_enabled = var.redis.replicas > 0
  multi_az_enabled           = var.redis.replicas > 0
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.quotas.name
  security_group_ids         = [aws_security_group.redis.id]
  parameter_group_name       = aws_elasticache_parameter_group.quotas.name
  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.this.arn
  transit_encryption_enabled = true
  auth_token                 = random_password.this["redis"].result
  snapshot_retention_limit   = var.redis.snapshot_days
  final_snapshot_identifier  = var.skip_final_snapshot ? null : "${local.name}-quotas-final"
  auto_minor_version_upgrade = true
  apply_immediately          = false
  tags                       = local.tags

  lifecycle {
    ignore_changes = [auth_token] # rotated with the redis-url secret (README: rotation)
  }

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.this["redis"].name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "engine-log"
  }
}

resource "aws_efs_file_system" "state" {
  creation_token = "${local.name}-state"
  encrypted      = true
  kms_key_id     = aws_kms_key.this.arn
  tags           = merge(local.tags, { Name = "${local.name}-state" })
}

resource "aws_efs_backup_policy" "state" {
  file_system_id = aws_efs_file_system.state.id
  backup_policy {
    status = "ENABLED"
  }
}

resource "aws_efs_mount_target" "state" {
  for_each        = toset(var.private_subnet_ids)
  file_system_id  = aws_efs_file_system.state.id
  subnet_id       = each.value
  security_groups = [aws_security_group.state.id]
}

resource "aws_efs_access_point" "state" {
  file_system_id = aws_efs_file_system.state.id
  tags           = local.tags

  posix_user {
    uid = 10001 # the image's user (infra/docker/Dockerfile)
    gid = 10001
  }
  root_directory {
    path = "/meterline"
    creation_info {
      owner_uid   = 10001
      owner_gid   = 10001
      permissions = "0750"
    }
  }
}
