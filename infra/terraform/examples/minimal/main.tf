# The smallest root: nudge in one region from the zips `make build-lambdas`
# and `make rules-layer` leave in target/. `make deploy-tf` runs it.

provider "aws" {
  region = var.region
}

module "nudge" {
  source = "../../modules/nudge"

  from_address    = var.from_address
  ses_identity    = var.ses_identity
  shop_domain     = var.shop_domain
  public_url      = var.public_url
  lambda_dir      = var.lambda_dir
  rules_layer_zip = var.rules_layer_zip
}
