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
  description = "Base URL of the unsubscribe and confirmation links: a custom domain mapped to the HTTP API."
  type        = string
}

variable "artifacts_bucket" {
  description = "The S3 bucket CI uploads the function zips and the rules layer to."
  type        = string
}

variable "artifacts_prefix" {
  description = "The key prefix of this build's artifacts, e.g. the commit: <prefix>/<function>/bootstrap.zip."
  type        = string
}
