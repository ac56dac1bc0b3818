# An example root: nudge in one region, artifacts from `make build-lambdas`
# and `make rules-layer`. `make deploy-tf` runs it.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.90, < 7.0"
    }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "from_address" {
  type = string
}

variable "shop_domain" {
  type    = string
  default = ""
}

variable "ses_identity" {
  description = "The verified SES identity to send from (the sender's domain or address)."
  type        = string
}

variable "public_url" {
  description = "Base URL of the unsubscribe and confirmation links; empty uses the HTTP API's address."
  type        = string
  default     = ""
}

variable "lambda_dir" {
  description = "Where `make build-lambdas` put <function>/bootstrap.zip."
  type        = string
  default     = "../../../target/lambda"
}

variable "rules_layer_zip" {
  description = "The zip from `make rules-layer`."
  type        = string
  default     = "../../../target/rules-layer.zip"
}

provider "aws" {
  region = var.region
}

module "nudge" {
  source          = "../modules/nudge"
  name            = "nudge"
  from_address    = var.from_address
  ses_identity    = var.ses_identity
  shop_domain     = var.shop_domain
  secrets_path    = "/nudge/prod"
  public_url      = var.public_url
  lambda_dir      = var.lambda_dir
  rules_layer_zip = var.rules_layer_zip
}

output "shopify_webhook_url" {
  value = module.nudge.shopify_webhook_url
}

output "woocommerce_webhook_url" {
  value = module.nudge.woocommerce_webhook_url
}

output "api_url" {
  value = module.nudge.api_url
}

output "iam_actions" {
  value = module.nudge.iam_actions
}
