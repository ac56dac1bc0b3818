variable "environment" {
  description = "Which environment this state is: staging or production."
  type        = string
  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment is staging or production."
  }
}

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

variable "sandbox_allowlist" {
  description = "Mail only to these addresses or @domains (comma-separated); empty in production."
  type        = string
  default     = ""
}

variable "alarm_topic_arn" {
  description = "SNS topic the alarms notify; empty for none."
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
