# The internet-facing ALB: the gateway on gateway_hostname (the default route) and the dashboard
# on dashboard_hostname behind OIDC or Cognito authentication. TLS from acm_certificate_arn,
# port 80 redirects to 443; without a certificate, plan stops unless allow_plaintext_alb.

resource "aws_lb" "this" {
  name                       = local.name
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  idle_timeout               = 300 # streamed completions run for minutes
  tags                       = local.tags

  lifecycle {
    precondition {
      condition     = local.alb_tls || var.allow_plaintext_alb
      error_message = "acm_certificate_arn is not set: the ALB would carry agents' keys in clear. Give a certificate, or set allow_plaintext_alb = true for a sandbox."
    }
    precondition {
      condition     = !local.alb_tls || ((var.dashboard_cognito == null) != (var.dashboard_oidc == null))
      error_message = "The dashboard needs exactly one of dashboard_cognito or dashboard_oidc (the ALB authenticates its users)."
    }
    precondition {
      condition     = var.dashboard_oidc == null || var.dashboard_oidc_client_secret != null
      error_message = "dashboard_oidc needs dashboard_oidc_client_secret."
    }
  }
}

resource "aws_lb_target_group" "gateway" {
  name                 = "${local.name}-gw"
  port                 = local.ports.gateway
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 60 # the gateway drains on SIGTERM; streams get a minute
  tags                 = local.tags

  health_check {
    path                = "/health/readiness"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_target_group" "dashboard" {
  name        = "${local.name}-dash"
  port        = local.ports.dashboard
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id
  tags        = local.tags

  health_check {
    path    = "/_stcore/health" # Streamlit's own
    matcher = "200"
  }
  stickiness {
    type    = "lb_cookie"
    enabled = true # Streamlit keeps a session per websocket
  }
}

resource "aws_lb_listener" "https" {
  count             = local.alb_tls ? 1 : 0
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.acm_certificate_arn
  tags              = local.tags

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.gateway.arn
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"
  tags              = local.tags

  default_action {
    type             = local.alb_tls ? "redirect" : "forward"
    target_group_arn = local.alb_tls ? null : aws_lb_target_group.gateway.arn

    dynamic "redirect" {
      for_each = local.alb_tls ? [1] : []
      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }
}

resource "aws_lb_listener_rule" "dashboard" {
  count        = local.alb_tls ? 1 : 0
  listener_arn = aws_lb_listener.https[0].arn
  priority     = 10
  tags         = local.tags

  condition {
    host_header {
      values = [var.dashboard_hostname]
    }
  }

  dynamic "action" {
    for_each = var.dashboard_cognito == null ? [] : [var.dashboard_cognito]
    content {
      type  = "authenticate-cognito"
      order = 1
      authenticate_cognito {
        user_pool_arn       = action.value.user_pool_arn
        user_pool_client_id = action.value.user_pool_client_id
        user_pool_domain    = action.value.user_pool_domain
        session_timeout     = 28800
      }
    }
  }

  dynamic "action" {
    for_each = var.dashboard_oidc == null ? [] : [var.dashboard_oidc]
    content {
      type  = "authenticate-oidc"
      order = 1
      authenticate_oidc {
        issuer                 = action.value.issuer
        authorization_endpoint = action.value.authorization_endpoint
        token_endpoint         = action.value.token_endpoint
        user_info_endpoint     = action.value.user_info_endpoint
        client_id              = action.value.client_id
        client_secret          = var.dashboard_oidc_client_secret
        session_timeout        = 28800
      }
    }
  }

  action {
    type             = "forward"
    order            = 2
    target_group_arn = aws_lb_target_group.dashboard.arn
  }
}
