# Every option the module has: artifacts from S3 as a CI pipeline uploads
# them, a custom domain for the links, an on-call topic for the alarms, the
# event bus for decisions and the event log, tags on everything.

provider "aws" {
  region = var.region
  # Tags every resource of this root, the module's included.
  default_tags {
    tags = { application = "nudge" }
  }
}

resource "aws_sns_topic" "oncall" {
  #checkov:skip=CKV_AWS_26:An example topic; encrypt it with a key of your own in production.
  name = "nudge-oncall"
}

resource "aws_cloudwatch_event_bus" "nudge" {
  name = "nudge"
}

module "nudge" {
  source = "../../modules/nudge"

  name               = "nudge"
  from_address       = var.from_address
  ses_identity       = var.ses_identity
  shop_domain        = var.shop_domain
  secrets_path       = "/nudge/prod"
  public_url         = var.public_url
  locale             = "en-GB"
  event_bus_name     = aws_cloudwatch_event_bus.nudge.name
  alarm_topic_arn    = aws_sns_topic.oncall.arn
  retention_days     = 400
  log_retention_days = 90

  check_concurrency  = 10
  ingest_concurrency = 50

  # `make build-lambdas rules-layer`, uploaded by CI under a prefix per commit:
  # s3://<bucket>/<commit>/<function>/bootstrap.zip and <commit>/rules-layer.zip.
  artifacts_bucket = var.artifacts_bucket
  lambda_dir       = var.artifacts_prefix
  rules_layer_zip  = "${var.artifacts_prefix}/rules-layer.zip"

  tags = {
    environment = "production"
    owner       = "growth"
  }
}
