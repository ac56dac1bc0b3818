variable "name" {
  description = "Prefix of every resource name (the SAM stack name)."
  type        = string
  default     = "nudge"
}

variable "from_address" {
  description = "Sender, e.g. \"Shop <hello@shop.example>\" - a verified SES identity."
  type        = string
}

variable "shop_domain" {
  description = "The shop's domain when one shop is served (WooCommerce and Segment deliveries)."
  type        = string
  default     = ""
}

variable "secrets_path" {
  description = "SSM Parameter Store path holding the secrets (SecureString NUDGE_* parameters, see docs/deploy.md)."
  type        = string
  default     = "/nudge/prod"
  validation {
    condition     = can(regex("^/[A-Za-z0-9_./-]+[^/]$", var.secrets_path))
    error_message = "secrets_path must start with / and not end with /."
  }
}

variable "public_url" {
  description = "Base URL of the unsubscribe and confirmation links (a custom domain in front of the HTTP API); empty uses the HTTP API's address."
  type        = string
  default     = ""
}

variable "locale" {
  type    = string
  default = "en-US"
}

variable "event_bus_name" {
  description = "EventBridge bus for decisions and data exports; empty turns publishing off."
  type        = string
  default     = ""
}

variable "sandbox_allowlist" {
  description = "Staging stacks - mail only to these addresses or @domains (comma-separated); the rest is decided `sandbox`."
  type        = string
  default     = ""
}

variable "retention_days" {
  type    = number
  default = 400
}

variable "reconcile_grace_minutes" {
  type    = number
  default = 15
}

variable "schedule_max_retries" {
  type    = number
  default = 10
  validation {
    condition     = var.schedule_max_retries >= 0 && var.schedule_max_retries <= 185
    error_message = "schedule_max_retries must be 0..185."
  }
}

variable "schedule_max_age_seconds" {
  type    = number
  default = 3600
  validation {
    condition     = var.schedule_max_age_seconds >= 60 && var.schedule_max_age_seconds <= 86400
    error_message = "schedule_max_age_seconds must be 60..86400."
  }
}

variable "check_concurrency" {
  description = "Reserved concurrency of the check function - caps the SES send rate."
  type        = number
  default     = 10
}

variable "log_retention_days" {
  type    = number
  default = 30
}

variable "alarm_topic_arn" {
  description = "SNS topic notified by the alarms; empty for none."
  type        = string
  default     = ""
}

variable "lambda_dir" {
  description = "Where `make build-lambdas` put the zips: <lambda_dir>/<function>/bootstrap.zip."
  type        = string
}

variable "rules_layer_zip" {
  description = "The rules layer zip from `make rules-layer` (rules/triggers.toml, rules/templates, rules/catalogue.json)."
  type        = string
}

variable "ses_identity" {
  description = "The verified SES identity the functions may send from: the sender's domain (shop.example) or address. Sending from any other identity is denied."
  type        = string
}

variable "ingest_concurrency" {
  description = "Reserved concurrency of each ingest function (shopify-webhook, woocommerce-webhook, track); 0 for none."
  type        = number
  default     = 0
  validation {
    condition     = var.ingest_concurrency >= 0
    error_message = "ingest_concurrency is 0 (none) or a positive number of concurrent executions."
  }
}
