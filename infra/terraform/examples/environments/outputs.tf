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
