# The HTTP API: the one public front door. The webhook, track and link
# functions behind one address, routes as the functions serve them.
# Deliveries authenticate themselves (HMAC signatures, write keys, signed
# links), so routes carry no authorizer. There are no function URLs: since
# October 2025 a new one answers only with lambda:InvokeFunction granted too,
# and this provider cannot limit that grant to URL calls, so it would let any
# AWS account invoke the functions directly. Each function's permission here
# names this API instead (docs/security.md).

locals {
  http_routes = {
    "POST /webhooks/shopify"     = "shopify-webhook"
    "POST /webhooks/woocommerce" = "woocommerce-webhook"
    "POST /webhooks/segment"     = "track"
    "POST /v1/{proxy+}"          = "track"
    "GET /unsubscribe"           = "unsubscribe"
    "POST /unsubscribe"          = "unsubscribe"
    "GET /confirm"               = "unsubscribe"
    "POST /confirm"              = "unsubscribe"
  }
  http_functions = toset(values(local.http_routes))
}

resource "aws_apigatewayv2_api" "http" {
  tags          = var.tags
  name          = "${var.name}-http"
  protocol_type = "HTTP"
}

resource "aws_cloudwatch_log_group" "http_api" {
  #checkov:skip=CKV_AWS_158:Access log lines carry request ids, routes and statuses, never addresses; CloudWatch Logs' default encryption is enough.
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days): operational logs, not an audit trail.
  tags              = var.tags
  name              = "/aws/apigateway/${var.name}-http"
  retention_in_days = var.log_retention_days
}

resource "aws_apigatewayv2_stage" "http" {
  tags        = var.tags
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = 1000
    throttling_rate_limit  = 500
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.http_api.arn
    format = jsonencode({
      requestId = "$context.requestId"
      routeKey  = "$context.routeKey"
      status    = "$context.status"
      latencyMs = "$context.responseLatency"
    })
  }
}

resource "aws_apigatewayv2_integration" "http" {
  for_each               = local.http_functions
  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_uri        = module.ingest[each.key].arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "http" {
  #checkov:skip=CKV_AWS_309:Deliveries authenticate themselves (HMAC signatures, write keys, signed links); Shopify, WooCommerce and mail clients cannot present IAM or JWT credentials.
  for_each  = local.http_routes
  api_id    = aws_apigatewayv2_api.http.id
  route_key = each.key
  target    = "integrations/${aws_apigatewayv2_integration.http[each.value].id}"
}

resource "aws_lambda_permission" "http_api" {
  for_each      = local.http_functions
  statement_id  = "AllowHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = module.ingest[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*"
}
