output "api_url" {
  description = "The public address: the tracking host and the base of the webhook addresses."
  value       = module.nudge.api_url
}

output "shopify_webhook_url" {
  description = "Register as the Shopify webhook address (shopify.app.toml `uri`)."
  value       = module.nudge.shopify_webhook_url
}

output "woocommerce_webhook_url" {
  description = "Register as the WooCommerce delivery URL."
  value       = module.nudge.woocommerce_webhook_url
}

output "checks_dead_letter_queue_url" {
  description = "Checks EventBridge Scheduler could not deliver (docs/deploy.md says how to replay them)."
  value       = module.nudge.checks_dead_letter_queue_url
}

output "table_name" {
  description = "The DynamoDB table (retained when the stack is destroyed)."
  value       = module.nudge.table_name
}
