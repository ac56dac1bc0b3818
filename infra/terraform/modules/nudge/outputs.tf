output "api_url" {
  description = "The public address: the tracking host (the SDKs post to <api_url>/v1/batch) and the base of the webhook and link addresses."
  value       = aws_apigatewayv2_api.http.api_endpoint
}

output "shopify_webhook_url" {
  description = "Register as the Shopify webhook address."
  value       = "${aws_apigatewayv2_api.http.api_endpoint}/webhooks/shopify"
}

output "woocommerce_webhook_url" {
  description = "Register as the WooCommerce delivery URL."
  value       = "${aws_apigatewayv2_api.http.api_endpoint}/webhooks/woocommerce"
}

output "checks_dead_letter_queue_url" {
  description = "SQS queue holding the checks EventBridge Scheduler could not deliver."
  value       = aws_sqs_queue.checks_dlq.url
}

output "table_name" {
  description = "The DynamoDB table."
  value       = aws_dynamodb_table.nudge.name
}

output "iam_actions" {
  description = "The actions each function's role is granted beyond its logs, traces and dead-letter queue: exactly the calls it makes (checked by scripts/check_infra.py)."
  value       = { for name, st in local.statements : name => sort(distinct(flatten([for s in st : s.Action]))) }
}
