# nudge on AWS: the same stack as infra/sam/template.yaml (`make test`
# compares the two).

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name
  account   = data.aws_caller_identity.current.account_id
  prefix    = "arn:${local.partition}"

  # Built from names (known at plan time) rather than read back after apply.
  check_function_arn = "${local.prefix}:lambda:${local.region}:${local.account}:function:${var.name}-check"
  scheduler_role_arn = "${local.prefix}:iam::${local.account}:role/${var.name}-scheduler"
  checks_dlq_arn     = "${local.prefix}:sqs:${local.region}:${local.account}:${var.name}-checks-dlq"
  schedules_arn      = "${local.prefix}:scheduler:${local.region}:${local.account}:schedule/${aws_scheduler_schedule_group.checks.name}/*"
  ssm_path_arn       = "${local.prefix}:ssm:${local.region}:${local.account}:parameter${var.secrets_path}"
  ses_arns = [
    "${local.prefix}:ses:${local.region}:${local.account}:identity/${var.ses_identity}",
    "${local.prefix}:ses:${local.region}:${local.account}:configuration-set/${aws_sesv2_configuration_set.mail.configuration_set_name}",
  ]
  event_bus_arn = "${local.prefix}:events:${local.region}:${local.account}:event-bus/${var.event_bus_name}"

  # Memory, timeout, reserved concurrency (-1: none), async invocation
  # (dead-letter queue), and exactly the actions each one uses
  # (scripts/check_infra.py holds the same lists for both stacks).
  ingest_reserved = var.ingest_concurrency == 0 ? -1 : var.ingest_concurrency
  functions = {
    "shopify-webhook" = {
      memory    = 256, timeout = 10, reserved = local.ingest_reserved, async = false, ses = false, events = true
      dynamodb  = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:Query", "dynamodb:Scan"]
      scheduler = ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"]
    }
    "woocommerce-webhook" = {
      memory    = 256, timeout = 10, reserved = local.ingest_reserved, async = false, ses = false, events = true
      dynamodb  = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:Query"]
      scheduler = ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"]
    }
    "track" = {
      memory    = 256, timeout = 10, reserved = local.ingest_reserved, async = false, ses = false, events = true
      dynamodb  = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:Query"]
      scheduler = ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"]
    }
    "check" = {
      memory    = 512, timeout = 30, reserved = var.check_concurrency, async = true, ses = true, events = true
      dynamodb  = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"]
      scheduler = ["scheduler:CreateSchedule"]
    }
    "ses-events" = {
      memory    = 256, timeout = 10, reserved = 5, async = true, ses = false, events = true
      dynamodb  = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem"]
      scheduler = ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"]
    }
    "unsubscribe" = {
      memory    = 128, timeout = 5, reserved = -1, async = false, ses = false, events = true
      dynamodb  = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem"]
      scheduler = ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"]
    }
    "reconcile" = {
      memory    = 512, timeout = 300, reserved = 1, async = true, ses = true, events = true
      dynamodb  = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan"]
      scheduler = ["scheduler:CreateSchedule"]
    }
  }

  # The settings every function reads (shared/aws/src/settings.rs).
  environment = {
    NUDGE_TABLE                    = aws_dynamodb_table.nudge.name
    NUDGE_RULES_DIR                = "/opt/rules"
    NUDGE_SHOP                     = var.shop_domain
    NUDGE_SCHEDULE_GROUP           = aws_scheduler_schedule_group.checks.name
    NUDGE_CHECK_FUNCTION_ARN       = local.check_function_arn
    NUDGE_SCHEDULER_ROLE_ARN       = local.scheduler_role_arn
    NUDGE_SCHEDULE_DLQ_ARN         = local.checks_dlq_arn
    NUDGE_SCHEDULE_MAX_RETRIES     = tostring(var.schedule_max_retries)
    NUDGE_SCHEDULE_MAX_AGE_SECONDS = tostring(var.schedule_max_age_seconds)
    NUDGE_SES_CONFIGURATION_SET    = aws_sesv2_configuration_set.mail.configuration_set_name
    NUDGE_FROM                     = var.from_address
    NUDGE_LOCALE                   = var.locale
    NUDGE_EVENT_BUS                = var.event_bus_name
    NUDGE_SANDBOX_ALLOWLIST        = var.sandbox_allowlist
    NUDGE_RETENTION_DAYS           = tostring(var.retention_days)
    NUDGE_RECONCILE_GRACE_MINUTES  = tostring(var.reconcile_grace_minutes)
    NUDGE_SECRETS_PATH             = var.secrets_path
  }
  # Only the mail-sending functions write links (unsubscribe, confirmation).
  mail_environment = {
    NUDGE_PUBLIC_URL = var.public_url != "" ? var.public_url : aws_apigatewayv2_api.http.api_endpoint
  }
  mail_functions = toset(["check", "reconcile"])
  alarm_actions  = var.alarm_topic_arn == "" ? [] : [var.alarm_topic_arn]
}

# The single table of docs/architecture.md.
resource "aws_dynamodb_table" "nudge" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS owned key; a customer managed key adds cost and a key policy to every function without a requirement for it.
  tags         = var.tags
  name         = var.name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "owner"
    type = "S"
  }
  attribute {
    name = "due_bucket"
    type = "S"
  }
  attribute {
    name = "next_due"
    type = "N"
  }

  global_secondary_index {
    name            = "by-owner"
    hash_key        = "owner"
    range_key       = "pk"
    projection_type = "KEYS_ONLY"
  }
  global_secondary_index {
    name            = "by-due"
    hash_key        = "due_bucket"
    range_key       = "next_due"
    projection_type = "KEYS_ONLY"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }
  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled = true
  }
  lifecycle {
    prevent_destroy = true
  }
}

# triggers.toml, templates/ and catalogue.json at /opt/rules (`make rules-layer`).
resource "aws_lambda_layer_version" "rules" {
  layer_name               = "${var.name}-rules"
  description              = "nudge rules - triggers.toml, templates, catalogue"
  filename                 = var.artifacts_bucket == "" ? var.rules_layer_zip : null
  s3_bucket                = var.artifacts_bucket == "" ? null : var.artifacts_bucket
  s3_key                   = var.artifacts_bucket == "" ? null : var.rules_layer_zip
  source_code_hash         = var.artifacts_bucket == "" ? filebase64sha256(var.rules_layer_zip) : null
  compatible_architectures = ["arm64"]
  compatible_runtimes      = ["provided.al2023"]
}

resource "aws_scheduler_schedule_group" "checks" {
  tags = var.tags
  name = "${var.name}-checks"
}

# Checks the scheduler could not deliver.
resource "aws_sqs_queue" "checks_dlq" {
  #checkov:skip=CKV_AWS_27:Encrypted at rest with SQS-managed keys; a KMS key would need key-policy grants for the Scheduler and Lambda service principals to write here.
  tags                      = var.tags
  name                      = "${var.name}-checks-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

# Failed asynchronous invocations of check, ses-events and reconcile.
resource "aws_sqs_queue" "functions_dlq" {
  #checkov:skip=CKV_AWS_27:Encrypted at rest with SQS-managed keys; a KMS key would need key-policy grants for the Lambda service to write here.
  tags                      = var.tags
  name                      = "${var.name}-functions-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

# The role EventBridge Scheduler assumes: invoke the check function and send
# undeliverable checks to the dead-letter queue. Nothing else.
resource "aws_iam_role" "scheduler" {
  tags = var.tags
  name = "${var.name}-scheduler"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
    }]
  })
}

resource "aws_iam_role_policy" "scheduler" {
  name = "invoke-check"
  role = aws_iam_role.scheduler.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = "lambda:InvokeFunction", Resource = local.check_function_arn },
      { Effect = "Allow", Action = "sqs:SendMessage", Resource = aws_sqs_queue.checks_dlq.arn },
    ]
  })
}

resource "aws_sesv2_configuration_set" "mail" {
  tags                   = var.tags
  configuration_set_name = "${var.name}-mail"
  reputation_options {
    reputation_metrics_enabled = true
  }
  sending_options {
    sending_enabled = true
  }
}

# SES events go to the default bus (the only one SES publishes to).
resource "aws_sesv2_configuration_set_event_destination" "eventbridge" {
  configuration_set_name = aws_sesv2_configuration_set.mail.configuration_set_name
  event_destination_name = "to-eventbridge"
  event_destination {
    enabled              = true
    matching_event_types = ["BOUNCE", "COMPLAINT", "DELIVERY", "OPEN", "CLICK"]
    event_bridge_destination {
      event_bus_arn = "${local.prefix}:events:${local.region}:${local.account}:event-bus/default"
    }
  }
}
