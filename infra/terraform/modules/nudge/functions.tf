# The seven functions (modules/function): exactly the actions each one uses.
# The mail-sending ones (check, reconcile) link to the HTTP API's address,
# so they are a second module call.

locals {
  statements = {
    for name, f in local.functions : name => concat(
      [
        {
          Effect   = "Allow"
          Action   = f.dynamodb
          Resource = [aws_dynamodb_table.nudge.arn, "${aws_dynamodb_table.nudge.arn}/index/*"]
        },
        { Effect = "Allow", Action = "ssm:GetParametersByPath", Resource = local.ssm_path_arn },
      ],
      [for s in [
        { Effect = "Allow", Action = f.scheduler, Resource = local.schedules_arn },
        { Effect = "Allow", Action = ["iam:PassRole"], Resource = aws_iam_role.scheduler.arn },
      ] : s if length(f.scheduler) > 0],
      [for s in [{ Effect = "Allow", Action = ["ses:SendEmail", "ses:SendRawEmail"], Resource = local.ses_arns }] : s if f.ses],
      [for s in [{ Effect = "Allow", Action = ["events:PutEvents"], Resource = local.event_bus_arn }] : s if f.events && var.event_bus_name != ""],
    )
  }
}

module "ingest" {
  source   = "../function"
  for_each = { for k, v in local.functions : k => v if !contains(local.mail_functions, k) }

  name               = "${var.name}-${each.key}"
  zip                = "${var.lambda_dir}/${each.key}/bootstrap.zip"
  memory             = each.value.memory
  timeout            = each.value.timeout
  reserved           = each.value.reserved
  dead_letter_arn    = each.value.async ? aws_sqs_queue.functions_dlq.arn : ""
  statements         = local.statements[each.key]
  environment        = local.environment
  layers             = [aws_lambda_layer_version.rules.arn]
  log_retention_days = var.log_retention_days
  s3_bucket          = var.artifacts_bucket
  tags               = var.tags
}

module "mail" {
  source   = "../function"
  for_each = { for k, v in local.functions : k => v if contains(local.mail_functions, k) }

  name               = "${var.name}-${each.key}"
  zip                = "${var.lambda_dir}/${each.key}/bootstrap.zip"
  memory             = each.value.memory
  timeout            = each.value.timeout
  reserved           = each.value.reserved
  dead_letter_arn    = each.value.async ? aws_sqs_queue.functions_dlq.arn : ""
  statements         = local.statements[each.key]
  environment        = merge(local.environment, local.mail_environment)
  layers             = [aws_lambda_layer_version.rules.arn]
  log_retention_days = var.log_retention_days
  s3_bucket          = var.artifacts_bucket
  tags               = var.tags
}

locals {
  fn = merge(module.ingest, module.mail)
}

# SES feedback from the default bus to ses-events.
resource "aws_cloudwatch_event_rule" "ses_feedback" {
  tags = var.tags
  name = "${var.name}-ses-feedback"
  event_pattern = jsonencode({
    source        = ["aws.ses"]
    "detail-type" = ["Email Bounced", "Email Complaint Received", "Email Delivered", "Email Opened", "Email Clicked"]
  })
}

resource "aws_cloudwatch_event_target" "ses_feedback" {
  rule = aws_cloudwatch_event_rule.ses_feedback.name
  arn  = module.ingest["ses-events"].arn
}

resource "aws_lambda_permission" "ses_feedback" {
  statement_id  = "AllowSesFeedback"
  action        = "lambda:InvokeFunction"
  function_name = module.ingest["ses-events"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.ses_feedback.arn
}

# The reconcile sweep.
resource "aws_cloudwatch_event_rule" "reconcile" {
  tags                = var.tags
  name                = "${var.name}-reconcile"
  schedule_expression = "rate(5 minutes)"
}

resource "aws_cloudwatch_event_target" "reconcile" {
  rule = aws_cloudwatch_event_rule.reconcile.name
  arn  = module.mail["reconcile"].arn
}

resource "aws_lambda_permission" "reconcile" {
  statement_id  = "AllowReconcileSchedule"
  action        = "lambda:InvokeFunction"
  function_name = module.mail["reconcile"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.reconcile.arn
}
