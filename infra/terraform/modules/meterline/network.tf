# Security groups: each component accepts only the traffic its callers send.

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "Meterline ALB: HTTPS (and the redirect on 80) from the allowed CIDRs"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description = "HTTPS from agents and people"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.alb_ingress_cidrs
  }
  ingress {
    description = "HTTP: redirected to HTTPS (served only with allow_plaintext_alb)"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = var.alb_ingress_cidrs
  }
  egress {
    description = "To the gateway and dashboard tasks"
    from_port   = local.ports.gateway
    to_port     = local.ports.dashboard
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.this.cidr_block]
  }
}

resource "aws_security_group" "gateway" {
  name        = "${local.name}-gateway"
  description = "Meterline gateway tasks (and the keys task): from the ALB; to providers, Redis, PostgreSQL, the collector"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description     = "From the ALB"
    from_port       = local.ports.gateway
    to_port         = local.ports.gateway
    protocol        = "tcp"
    security_groups = [aws_security_group.alb.id]
  }
  egress {
    description = "HTTPS to LLM providers and AWS APIs (Secrets Manager, ECR, logs)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    description = "To the collector NLB (OTLP/gRPC 4317, OTLP/HTTP 4318)"
    from_port   = local.ports.collector_grpc
    to_port     = local.ports.collector_http
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.this.cidr_block]
  }
  egress {
    description = "To PostgreSQL (key store)"
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.this.cidr_block]
  }
  egress {
    description = "To Redis (quota counters)"
    from_port   = 6379
    to_port     = 6379
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.this.cidr_block]
  }
}

resource "aws_security_group" "collector" {
  name        = "${local.name}-collector"
  description = "Meterline collector tasks: OTLP from inside the VPC (through the NLB); to S3 and AWS APIs"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description = "OTLP/gRPC 4317 and OTLP/HTTP 4318 from the VPC (gateways, agents, NLB health checks)"
    from_port   = local.ports.collector_grpc
    to_port     = local.ports.collector_http
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.this.cidr_block]
  }
  egress {
    description = "HTTPS to S3 and AWS APIs"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "dashboard" {
  name        = "${local.name}-dashboard"
  description = "Meterline dashboard task: from the ALB only"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description     = "From the ALB (after its authentication)"
    from_port       = local.ports.dashboard
    to_port         = local.ports.dashboard
    protocol        = "tcp"
    security_groups = [aws_security_group.alb.id]
  }
  egress {
    description = "HTTPS to S3 and AWS APIs"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    description = "NFS to the state volume"
    from_port   = 2049
    to_port     = 2049
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.this.cidr_block]
  }
}

resource "aws_security_group" "analytics" {
  name        = "${local.name}-analytics"
  description = "Meterline analytics and alarm runs: no ingress; to S3, AWS APIs, alarm webhooks and the state volume"
  vpc_id      = var.vpc_id
  tags        = local.tags

  egress {
    description = "HTTPS to S3, AWS APIs and the alarm webhooks (DingTalk, Slack)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    description = "NFS to the state volume"
    from_port   = 2049
    to_port     = 2049
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.this.cidr_block]
  }
}

resource "aws_security_group" "database" {
  name        = "${local.name}-database"
  description = "Meterline PostgreSQL: from the gateway and keys tasks"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description     = "PostgreSQL from the gateways and the keys task"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.gateway.id]
  }
}

resource "aws_security_group" "redis" {
  name        = "${local.name}-redis"
  description = "Meterline Redis: from the gateway tasks"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description     = "Redis (TLS) from the gateways"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [aws_security_group.gateway.id]
  }
}

resource "aws_security_group" "state" {
  name        = "${local.name}-state"
  description = "Meterline state volume (EFS): NFS from analytics and the dashboard"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description     = "NFS from analytics, alarms and the dashboard"
    from_port       = 2049
    to_port         = 2049
    protocol        = "tcp"
    security_groups = [aws_security_group.analytics.id, aws_security_group.dashboard.id]
  }
}
