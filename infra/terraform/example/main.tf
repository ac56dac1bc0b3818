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

provider "aws" {
  region = var.region
}

module "nudge" {
  source          = "../modules/nudge"
  name            = "nudge"
  from_address    = var.from_address
  shop_domain     = var.shop_domain
  secrets_path    = "/nudge/prod"
  lambda_dir      = "${path.root}/../../../target/lambda"
  rules_layer_zip = "${path.root}/../../../target/rules-layer.zip"
}

output "shopify_webhook_url" {
  value = module.nudge.shopify_webhook_url
}

output "woocommerce_webhook_url" {
  value = module.nudge.woocommerce_webhook_url
}

output "track_url" {
  value = module.nudge.track_url
}
