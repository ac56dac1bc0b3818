# Alarms and the dashboard (the same as infra/sam/template.yaml).

locals {
  lambda_alarms = merge([
    for fn in keys(local.functions) : {
      for metric in ["Errors", "Throttles"] : "${fn}-${metric}" => { function = fn, metric = metric }
    }
  ]...)
}

resource "aws_cloudwatch_metric_alarm" "lambda" {
  tags                = var.tags
  for_each            = local.lambda_alarms
  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = "${each.value.function} - ${lower(each.value.metric)} in the last 5 minutes"
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric
  dimensions          = { FunctionName = local.fn[each.value.function].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "dlq" {
  tags = var.tags
  for_each = {
    checks    = aws_sqs_queue.checks_dlq.name
    functions = aws_sqs_queue.functions_dlq.name
  }
  alarm_name          = "${var.name}-${each.key}-dead-letters"
  alarm_description   = "Messages are waiting in ${each.value} (replay them, docs/deploy.md)"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
}

# SES guidance: bounce rate under 5 % (review at 5 %, sending at risk at
# 10 %), complaints under 0.1 % (review at 0.1 %, at risk at 0.5 %).
resource "aws_cloudwatch_metric_alarm" "ses" {
  tags = var.tags
  for_each = {
    "Reputation.BounceRate"    = 0.05
    "Reputation.ComplaintRate" = 0.001
  }
  alarm_name          = "${var.name}-ses-${lower(replace(each.key, "Reputation.", ""))}"
  alarm_description   = "SES ${each.key} reached ${each.value * 100} %"
  namespace           = "AWS/SES"
  metric_name         = each.key
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = each.value
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
}

# Emails sent per hour outside the band learned from the past two weeks.
resource "aws_cloudwatch_metric_alarm" "sends_anomaly" {
  tags                = var.tags
  alarm_name          = "${var.name}-sends-anomaly"
  alarm_description   = "Emails sent per hour left their usual band"
  comparison_operator = "LessThanLowerOrGreaterThanUpperThreshold"
  evaluation_periods  = 1
  threshold_metric_id = "band"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions

  metric_query {
    id          = "sends"
    return_data = true
    metric {
      namespace   = "nudge"
      metric_name = "Sends"
      dimensions  = { Function = local.fn["check"].function_name }
      period      = 3600
      stat        = "Sum"
    }
  }
  metric_query {
    id         = "band"
    expression = "ANOMALY_DETECTION_BAND(sends, 3)"
  }
}

resource "aws_cloudwatch_dashboard" "nudge" {
  dashboard_name = "${var.name}-nudge"
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title = "Events ingested and checks run", region = local.region, stat = "Sum", period = 300
          metrics = concat(
            [for fn in ["shopify-webhook", "woocommerce-webhook", "track"] : ["nudge", "EventsIngested", "Function", local.fn[fn].function_name]],
            [["nudge", "ChecksRun", "Function", local.fn["check"].function_name]],
          )
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title = "Sends and skips", region = local.region, stat = "Sum", period = 300
          metrics = [
            ["nudge", "Sends", "Function", local.fn["check"].function_name],
            [{ expression = "SEARCH('{nudge,Function,Reason} MetricName=\"Skips\"', 'Sum', 300)", id = "skips", label = "skips by reason" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title = "Errors and SES throttling", region = local.region, stat = "Sum", period = 300
          metrics = [
            [{ expression = "SEARCH('{AWS/Lambda,FunctionName} MetricName=\"Errors\" ${var.name}', 'Sum', 300)", id = "lambda", label = "function errors" }],
            [{ expression = "SEARCH('{nudge,Function,Stage} MetricName=\"Errors\"', 'Sum', 300)", id = "nudge", label = "nudge errors" }],
            ["nudge", "SesThrottled", "Function", local.fn["check"].function_name],
            ["nudge", "SesThrottled", "Function", local.fn["reconcile"].function_name],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title   = "SES reputation", region = local.region, stat = "Maximum", period = 3600
          metrics = [["AWS/SES", "Reputation.BounceRate"], ["AWS/SES", "Reputation.ComplaintRate"]]
        }
      },
    ]
  })
}
