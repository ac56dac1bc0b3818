# One nudge Lambda function: its log group with retention, its own role with
# exactly the statements given, the function (arm64, provided.al2023, the
# rules layer). No function URL: the public ones are reached through the
# stack's HTTP API only (docs/security.md).

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.90, < 7.0"
    }
  }
}

variable "name" {
  description = "Function name: <stack>-<function>."
  type        = string
}

variable "zip" {
  description = "The bootstrap.zip built by cargo lambda: a local path, or its key in s3_bucket."
  type        = string
}

variable "s3_bucket" {
  description = "The bucket holding zip; empty: zip is a local file."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Tags for the function, its role and its log group."
  type        = map(string)
  default     = {}
}

variable "memory" {
  description = "Memory in MB (CPU scales with it)."
  type        = number
}

variable "timeout" {
  description = "Timeout in seconds."
  type        = number
}

variable "reserved" {
  description = "Reserved concurrency; -1 for none."
  type        = number
}

variable "dead_letter_arn" {
  description = "SQS queue for failed asynchronous invocations; empty for synchronous functions."
  type        = string
}

variable "statements" {
  description = "IAM policy statements: everything the function may do beyond writing its logs and traces."
  type        = any
}

variable "environment" {
  description = "The function's environment variables (no secrets: those are read from SSM)."
  type        = map(string)
}

variable "layers" {
  description = "Layer ARNs (the rules layer)."
  type        = list(string)
}

variable "log_retention_days" {
  description = "Days the function's log group keeps its logs."
  type        = number
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:Log lines carry ids and reasons, never addresses; CloudWatch Logs' default encryption is enough.
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days): debugging logs, not an audit trail.
  tags              = var.tags
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_iam_role" "this" {
  tags = var.tags
  name = var.name
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy" "this" {
  name = "nudge"
  role = aws_iam_role.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [
        { Effect = "Allow", Action = ["logs:CreateLogStream", "logs:PutLogEvents"], Resource = "${aws_cloudwatch_log_group.this.arn}:*" },
        { Effect = "Allow", Action = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], Resource = "*" },
      ],
      [for s in [{ Effect = "Allow", Action = ["sqs:SendMessage"], Resource = var.dead_letter_arn }] : s if var.dead_letter_arn != ""],
      var.statements,
    )
  })
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:nudge talks only to AWS APIs over their public endpoints; a VPC would add NAT cost and cold-start time for no reachable private resource.
  #checkov:skip=CKV_AWS_173:The environment holds no secrets (they are read from SSM at init), so the default encryption is enough.
  #checkov:skip=CKV_AWS_272:Code signing is left to the deploying organisation's pipeline.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is set on the SES-facing functions (check, ses-events, reconcile); ingest endpoints must absorb storefront bursts.
  #checkov:skip=CKV_AWS_116:Asynchronous functions get the dead-letter queue; the function-URL ones are synchronous, so the caller sees a failure and retries.
  tags          = var.tags
  function_name = var.name
  role          = aws_iam_role.this.arn
  runtime       = "provided.al2023"
  architectures = ["arm64"]
  handler       = "bootstrap"
  filename      = var.s3_bucket == "" ? var.zip : null
  s3_bucket     = var.s3_bucket == "" ? null : var.s3_bucket
  s3_key        = var.s3_bucket == "" ? null : var.zip
  memory_size   = var.memory
  timeout       = var.timeout
  layers        = var.layers

  # From S3, a new key (a prefix per build) is a new deployment.
  source_code_hash               = var.s3_bucket == "" ? filebase64sha256(var.zip) : null
  reserved_concurrent_executions = var.reserved

  environment {
    variables = var.environment
  }
  tracing_config {
    mode = "Active"
  }
  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this.name
  }
  dynamic "dead_letter_config" {
    for_each = var.dead_letter_arn == "" ? [] : [var.dead_letter_arn]
    content {
      target_arn = dead_letter_config.value
    }
  }
  depends_on = [aws_iam_role_policy.this]
}

output "function_name" {
  description = "The function's name."
  value       = aws_lambda_function.this.function_name
}

output "arn" {
  description = "The function's ARN."
  value       = aws_lambda_function.this.arn
}
