variable "name" {
  description = "Prefix of every resource name (the SAM stack name): one per environment, e.g. nudge-staging."
  type        = string
  default     = "nudge"
  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,30}$", var.name))
    error_message = "name must start with a letter and hold at most 31 letters, digits and hyphens (function names append up to 20 characters)."
  }
}

variable "from_address" {
  description = "Sender, e.g. \"Shop <hello@shop.example>\" - a verified SES identity."
  type        = string
  validation {
    condition     = can(regex("^[^@<>]*<?[^@<> ]+@[^@<> ]+\\.[^@<> ]+>?$", var.from_address))
    error_message = "from_address is an address, alone or as \"Name <address>\"."
  }
}

variable "shop_domain" {
  description = "The shop's domain when one shop is served (WooCommerce and Segment deliveries)."
  type        = string
  default     = ""
  validation {
    condition     = var.shop_domain == "" || can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", var.shop_domain))
    error_message = "shop_domain is empty or a host name such as your-shop.myshopify.com (lower case, no scheme)."
  }
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
  validation {
    condition     = var.public_url == "" || can(regex("^https?://[^ /]+(/.*)?$", var.public_url))
    error_message = "public_url is empty or an http(s) URL."
  }
}

variable "locale" {
  description = "The shop's locale (BCP 47), for prices and dates in emails."
  type        = string
  default     = "en-US"
  validation {
    condition     = can(regex("^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", var.locale))
    error_message = "locale is a BCP 47 tag such as en-US or de-DE."
  }
}

variable "event_bus_name" {
  description = "EventBridge bus for decisions and data exports; empty turns publishing off."
  type        = string
  default     = ""
  validation {
    condition     = var.event_bus_name == "" || can(regex("^[A-Za-z0-9._/-]{1,256}$", var.event_bus_name)) || can(regex("^arn:", var.event_bus_name))
    error_message = "event_bus_name is empty, an event bus name or its ARN."
  }
}

variable "sandbox_allowlist" {
  description = "Staging stacks - mail only to these addresses or @domains (comma-separated); the rest is decided `sandbox`."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^[^ ]*$", var.sandbox_allowlist))
    error_message = "sandbox_allowlist is a comma-separated list without spaces: addresses or @domains."
  }
}

variable "retention_days" {
  description = "Profiles not updated for this many days are erased with everything held about them (DynamoDB TTL)."
  type        = number
  default     = 400
  validation {
    condition     = var.retention_days >= 1 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days is a whole number of days, at least 1."
  }
}

variable "reconcile_grace_minutes" {
  description = "The reconcile sweep runs checks overdue by more than this many minutes (missed schedules, parked checks)."
  type        = number
  default     = 15
  validation {
    condition     = var.reconcile_grace_minutes >= 1 && floor(var.reconcile_grace_minutes) == var.reconcile_grace_minutes
    error_message = "reconcile_grace_minutes is a whole number of minutes, at least 1."
  }
}

variable "schedule_max_retries" {
  description = "Retries EventBridge Scheduler makes to invoke the check function before the check goes to the dead-letter queue."
  type        = number
  default     = 10
  validation {
    condition     = var.schedule_max_retries >= 0 && var.schedule_max_retries <= 185
    error_message = "schedule_max_retries must be 0..185."
  }
}

variable "schedule_max_age_seconds" {
  description = "How long EventBridge Scheduler keeps retrying one check invocation, in seconds."
  type        = number
  default     = 3600
  validation {
    condition     = var.schedule_max_age_seconds >= 60 && var.schedule_max_age_seconds <= 86400
    error_message = "schedule_max_age_seconds must be 60..86400."
  }
}

variable "check_concurrency" {
  description = "Reserved concurrency of the check function - caps the SES send rate."
  type        = number
  default     = 10
  validation {
    condition     = var.check_concurrency >= 1
    error_message = "check_concurrency is at least 1 (0 would stop every check)."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps the functions' and the HTTP API's logs (one of the values CloudWatch accepts)."
  type        = number
  default     = 30
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "alarm_topic_arn" {
  description = "SNS topic notified by the alarms; empty for none."
  type        = string
  default     = ""
  validation {
    condition     = var.alarm_topic_arn == "" || can(regex("^arn:[^:]+:sns:[^:]+:[0-9]{12}:.+$", var.alarm_topic_arn))
    error_message = "alarm_topic_arn is empty or an SNS topic ARN."
  }
}

variable "lambda_dir" {
  description = "Where `make build-lambdas` put the zips: <lambda_dir>/<function>/bootstrap.zip. With artifacts_bucket set, the key prefix in that bucket instead."
  type        = string
  validation {
    condition     = length(var.lambda_dir) > 0
    error_message = "lambda_dir is the directory (or S3 key prefix) holding <function>/bootstrap.zip."
  }
}

variable "artifacts_bucket" {
  description = "An S3 bucket holding the function zips (<lambda_dir>/<function>/bootstrap.zip as keys) and the rules layer (rules_layer_zip as key), as a CI pipeline uploads them; empty reads local files."
  type        = string
  default     = ""
  validation {
    condition     = var.artifacts_bucket == "" || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.artifacts_bucket))
    error_message = "artifacts_bucket is empty or an S3 bucket name."
  }
}

variable "rules_layer_zip" {
  description = "The rules layer zip from `make rules-layer` (rules/triggers.toml, rules/templates, rules/catalogue.json): a local path, or the S3 key with artifacts_bucket."
  type        = string
  validation {
    condition     = endswith(var.rules_layer_zip, ".zip")
    error_message = "rules_layer_zip is the .zip `make rules-layer` writes (or its S3 key)."
  }
}

variable "ses_identity" {
  description = "The verified SES identity the functions may send from: the sender's domain (shop.example) or address. Sending from any other identity is denied."
  type        = string
  validation {
    condition     = can(regex("^([^@ ]+@)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$", var.ses_identity))
    error_message = "ses_identity is a domain (shop.example) or an address (hello@shop.example)."
  }
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

variable "tags" {
  description = "Tags for every resource the module creates that takes tags (e.g. environment, owner, cost centre)."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256])
    error_message = "tag keys are 1-128 characters and values at most 256."
  }
}
