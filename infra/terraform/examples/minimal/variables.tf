variable "region" {
  description = "The AWS region to deploy to (SES must be set up there)."
  type        = string
  default     = "us-east-1"
}

variable "from_address" {
  description = "Sender of the emails, e.g. \"Shop <hello@shop.example>\"."
  type        = string
}

variable "ses_identity" {
  description = "The verified SES identity to send from (the sender's domain or address)."
  type        = string
}

variable "shop_domain" {
  description = "The shop's domain when one shop is served, e.g. your-shop.myshopify.com."
  type        = string
  default     = ""
}

variable "public_url" {
  description = "Base URL of the unsubscribe and confirmation links; empty uses the HTTP API's address."
  type        = string
  default     = ""
}

variable "lambda_dir" {
  description = "Where `make build-lambdas` put <function>/bootstrap.zip."
  type        = string
  default     = "../../../../target/lambda"
}

variable "rules_layer_zip" {
  description = "The zip from `make rules-layer`."
  type        = string
  default     = "../../../../target/rules-layer.zip"
}
