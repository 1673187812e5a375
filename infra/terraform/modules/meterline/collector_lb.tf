# The collector behind an internal NLB: TLS listeners on 4318 (OTLP/HTTP) and 4317 (OTLP/gRPC,
# ALPN h2) from collector_certificate_arn, reached as collector_hostname in the private zone.
# Without a certificate, plan stops unless allow_plaintext_collector.

locals {
  collector_listeners = {
    http = { port = local.ports.collector_http, alpn = null }
    grpc = { port = local.ports.collector_grpc, alpn = "HTTP2Preferred" }
  }
}

resource "aws_lb" "collector" {
  name                             = "${local.name}-otlp"
  load_balancer_type               = "network"
  internal                         = true
  subnets                          = var.private_subnet_ids
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.deletion_protection
  tags                             = local.tags

  lifecycle {
    precondition {
      condition     = local.collector_tls || var.allow_plaintext_collector
      error_message = "collector_certificate_arn is not set: ingest tokens and usage records would cross the VPC in clear. Give a certificate, or set allow_plaintext_collector = true."
    }
  }
}

resource "aws_lb_target_group" "collector" {
  for_each    = local.collector_listeners
  name        = "${local.name}-${each.key}"
  port        = each.value.port
  protocol    = "TCP"
  target_type = "ip"
  vpc_id      = var.vpc_id
  tags        = local.tags

  deregistration_delay = 30

  health_check {
    protocol = "HTTP"
    port     = tostring(local.ports.collector_http)
    path     = "/health"
  }
}

resource "aws_lb_listener" "collector" {
  for_each          = local.collector_listeners
  load_balancer_arn = aws_lb.collector.arn
  port              = each.value.port
  protocol          = local.collector_tls ? "TLS" : "TCP"
  certificate_arn   = var.collector_certificate_arn
  ssl_policy        = local.collector_tls ? "ELBSecurityPolicy-TLS13-1-2-2021-06" : null
  alpn_policy       = local.collector_tls ? each.value.alpn : null
  tags              = local.tags

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.collector[each.key].arn
  }
}

resource "aws_route53_record" "collector" {
  zone_id = var.private_zone_id
  name    = var.collector_hostname
  type    = "A"

  alias {
    name                   = aws_lb.collector.dns_name
    zone_id                = aws_lb.collector.zone_id
    evaluate_target_health = true
  }
}
