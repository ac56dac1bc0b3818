# Staging and production side by side from one root: each has its own
# state (a key of its own in the state bucket), its own stack name, SSM path
# and settings. Staging mails only an allowlist (sandbox), so a test order
# never emails a real customer.

provider "aws" {
  region = var.region
  default_tags {
    tags = { application = "nudge", environment = var.environment }
  }
}

module "nudge" {
  source = "../../modules/nudge"

  name              = "nudge-${var.environment}"
  from_address      = var.from_address
  ses_identity      = var.ses_identity
  shop_domain       = var.shop_domain
  secrets_path      = "/nudge/${var.environment}"
  sandbox_allowlist = var.sandbox_allowlist
  alarm_topic_arn   = var.alarm_topic_arn
  lambda_dir        = var.lambda_dir
  rules_layer_zip   = var.rules_layer_zip
}
