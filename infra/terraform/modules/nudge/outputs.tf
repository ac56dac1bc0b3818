output "shopify_webhook_url" {
  description = "Register as the Shopify webhook address (append webhooks/shopify)."
  value       = local.fn["shopify-webhook"].url
}

output "woocommerce_webhook_url" {
  description = "Register as the WooCommerce delivery URL (append webhooks/woocommerce)."
  value       = local.fn["woocommerce-webhook"].url
}

output "track_url" {
  description = "Segment-compatible tracking API base (v1/batch, v1/track, ...)."
  value       = local.fn["track"].url
}

output "unsubscribe_url" {
  value = local.fn["unsubscribe"].url
}

output "checks_dead_letter_queue_url" {
  value = aws_sqs_queue.checks_dlq.url
}

output "table_name" {
  value = aws_dynamodb_table.nudge.name
}

output "http_api_url" {
  description = "The HTTP API's address when http_api is on (every route is served under it too); empty otherwise."
  value       = var.http_api ? aws_apigatewayv2_api.http[0].api_endpoint : ""
}
