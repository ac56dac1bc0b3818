//! The one typed loader of every function's configuration. [`SETTINGS`] is
//! the single list of names: the SAM template, the Terraform module and the
//! README are checked against it by a test, so they cannot drift apart.

use std::path::{Path, PathBuf};

use jiff::SignedDuration;

/// One environment variable or secret parameter.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    /// Read from SSM Parameter Store (`NUDGE_SECRETS_PATH` + name) in
    /// production; a plain environment value is accepted for local runs.
    pub secret: bool,
    pub need: Need,
    pub doc: &'static str,
}

/// Which functions cannot start without a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Every function.
    All,
    /// The functions that send mail: `check` and `reconcile`.
    Mail,
    /// None: optional, with a default or off when unset.
    Optional,
}

const fn env(name: &'static str, need: Need, doc: &'static str) -> Setting {
    Setting { name, secret: false, need, doc }
}

const fn secret(name: &'static str, need: Need, doc: &'static str) -> Setting {
    Setting { name, secret: true, need, doc }
}

pub const TABLE: &str = "NUDGE_TABLE";
pub const RULES_DIR: &str = "NUDGE_RULES_DIR";
pub const SHOP: &str = "NUDGE_SHOP";
pub const SCHEDULE_GROUP: &str = "NUDGE_SCHEDULE_GROUP";
pub const CHECK_FUNCTION_ARN: &str = "NUDGE_CHECK_FUNCTION_ARN";
pub const SCHEDULER_ROLE_ARN: &str = "NUDGE_SCHEDULER_ROLE_ARN";
pub const SCHEDULE_DLQ_ARN: &str = "NUDGE_SCHEDULE_DLQ_ARN";
pub const SCHEDULE_MAX_RETRIES: &str = "NUDGE_SCHEDULE_MAX_RETRIES";
pub const SCHEDULE_MAX_AGE_SECONDS: &str = "NUDGE_SCHEDULE_MAX_AGE_SECONDS";
pub const SES_CONFIGURATION_SET: &str = "NUDGE_SES_CONFIGURATION_SET";
pub const FROM: &str = "NUDGE_FROM";
pub const PUBLIC_URL: &str = "NUDGE_PUBLIC_URL";
pub const LOCALE: &str = "NUDGE_LOCALE";
pub const EVENT_BUS: &str = "NUDGE_EVENT_BUS";
pub const SANDBOX_ALLOWLIST: &str = "NUDGE_SANDBOX_ALLOWLIST";
pub const RETENTION_DAYS: &str = "NUDGE_RETENTION_DAYS";
pub const RECONCILE_GRACE_MINUTES: &str = "NUDGE_RECONCILE_GRACE_MINUTES";
pub const SECRETS_PATH: &str = "NUDGE_SECRETS_PATH";
pub const ALIAS_KEY: &str = "NUDGE_ALIAS_KEY";
pub const UNSUBSCRIBE_KEY: &str = "NUDGE_UNSUBSCRIBE_KEY";
pub const UNSUBSCRIBE_KEY_PREVIOUS: &str = "NUDGE_UNSUBSCRIBE_KEY_PREVIOUS";

/// The environment for starting any function on this machine under a local
/// Runtime API at `runtime_api`, with `rules_dir` as the rules layer:
/// Lambda's own variables, dummy credentials, a placeholder for every
/// required setting and plain secrets (no secrets path), so init makes no
/// AWS call. The init benchmark and the functions' start-up tests run them
/// with it.
pub fn local_start_env(runtime_api: &str, rules_dir: &Path) -> Vec<(&'static str, String)> {
    use nudge_sources::config::env::{SEGMENT_WRITE_KEY, SHOPIFY_SECRET, WOOCOMMERCE_SECRET};
    let arn = |rest: &str| format!("arn:aws:{rest}");
    vec![
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", "local".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "local".into()),
        ("AWS_SECRET_ACCESS_KEY", "local".into()),
        (TABLE, "nudge".into()),
        (SCHEDULE_GROUP, "nudge-checks".into()),
        (CHECK_FUNCTION_ARN, arn("lambda:us-east-1:123456789012:function:nudge-check")),
        (SCHEDULER_ROLE_ARN, arn("iam::123456789012:role/nudge-scheduler")),
        (SCHEDULE_DLQ_ARN, arn("sqs:us-east-1:123456789012:nudge-checks-dlq")),
        (SES_CONFIGURATION_SET, "nudge".into()),
        (FROM, "Shop <shop@example.com>".into()),
        (PUBLIC_URL, "https://unsubscribe.example".into()),
        (RULES_DIR, rules_dir.display().to_string()),
        (SHOP, "acme.myshopify.com".into()),
        (SHOPIFY_SECRET, "local".into()),
        (WOOCOMMERCE_SECRET, "local".into()),
        (SEGMENT_WRITE_KEY, "local".into()),
        (ALIAS_KEY, "local".into()),
        (UNSUBSCRIBE_KEY, "local".into()),
    ]
}

/// Where the rules layer puts triggers.toml, templates/ and catalogue.json.
pub const DEFAULT_RULES_DIR: &str = "/opt/rules";

/// Every setting, in the order docs/deploy.md documents them.
pub const SETTINGS: &[Setting] = &[
    env(TABLE, Need::All, "DynamoDB table name"),
    env(
        RULES_DIR,
        Need::Optional,
        "directory holding triggers.toml, templates/ and catalogue.json (the rules layer: /opt/rules)",
    ),
    env(SHOP, Need::Optional, "the shop's domain when only one is served (WooCommerce and Segment deliveries)"),
    env(SCHEDULE_GROUP, Need::All, "EventBridge Scheduler group for check schedules"),
    env(CHECK_FUNCTION_ARN, Need::All, "ARN of the check function (the schedules' target)"),
    env(SCHEDULER_ROLE_ARN, Need::All, "role EventBridge Scheduler assumes to invoke the check function"),
    env(SCHEDULE_DLQ_ARN, Need::All, "SQS queue for checks the scheduler could not deliver"),
    env(SCHEDULE_MAX_RETRIES, Need::Optional, "scheduler retry attempts before the dead-letter queue (default 10)"),
    env(SCHEDULE_MAX_AGE_SECONDS, Need::Optional, "how long the scheduler keeps retrying a check (default 3600)"),
    env(SES_CONFIGURATION_SET, Need::Mail, "SES v2 configuration set (event publishing to EventBridge)"),
    env(FROM, Need::Mail, "sender, e.g. `Shop <hello@shop.example>` (a verified SES identity)"),
    env(PUBLIC_URL, Need::Mail, "base URL of the unsubscribe endpoint, used in List-Unsubscribe links"),
    env(LOCALE, Need::Optional, "locale for prices in emails (default en-US)"),
    env(EVENT_BUS, Need::Optional, "EventBridge bus for decisions and data exports (off when unset)"),
    env(
        SANDBOX_ALLOWLIST,
        Need::Optional,
        "staging: mail only to these addresses / @domains; the rest is decided `sandbox`",
    ),
    env(RETENTION_DAYS, Need::Optional, "profiles idle this long expire through DynamoDB TTL (default 400)"),
    env(RECONCILE_GRACE_MINUTES, Need::Optional, "reconcile runs checks overdue by more than this (default 15)"),
    env(SECRETS_PATH, Need::Optional, "SSM Parameter Store path holding the secrets below as SecureString parameters"),
    secret(nudge_sources::config::env::SHOPIFY_SECRET, Need::Optional, "Shopify app client secret (webhook HMAC key)"),
    secret(
        nudge_sources::config::env::SHOPIFY_SECRET_PREVIOUS,
        Need::Optional,
        "the previous Shopify secret, during a rotation",
    ),
    secret(nudge_sources::config::env::WOOCOMMERCE_SECRET, Need::Optional, "WooCommerce webhook secret"),
    secret(
        nudge_sources::config::env::SEGMENT_WRITE_KEY,
        Need::Optional,
        "browser write key of the track endpoint (public: cannot grant consent or replace an address)",
    ),
    secret(
        nudge_sources::config::env::SEGMENT_SERVER_KEY,
        Need::Optional,
        "secret server-side key of the track endpoint (fully trusted)",
    ),
    secret(
        nudge_sources::config::env::SEGMENT_WEBHOOK_SECRET,
        Need::Optional,
        "Segment webhook destination shared secret",
    ),
    secret(ALIAS_KEY, Need::All, "key of the HMAC that turns email addresses into alias keys"),
    secret(UNSUBSCRIBE_KEY, Need::All, "key that signs unsubscribe and confirmation links"),
    secret(UNSUBSCRIBE_KEY_PREVIOUS, Need::Optional, "the previous link-signing key, still accepted during a rotation"),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
}

/// The typed settings of a function. Secrets are not in here: they are
/// read separately (see [`crate::secrets`]) and never logged.
#[derive(Debug, Clone)]
pub struct Settings {
    pub table: String,
    pub rules_dir: PathBuf,
    pub schedule: ScheduleSettings,
    mail: [Option<String>; 3],
    pub locale: String,
    pub event_bus: Option<String>,
    pub sandbox: Option<String>,
    pub retention: SignedDuration,
    pub reconcile_grace: SignedDuration,
    pub secrets_path: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    pub group: String,
    pub target_arn: String,
    pub role_arn: String,
    pub dlq_arn: String,
    pub max_retries: i32,
    pub max_age_seconds: i32,
}

/// What the mail-sending functions need on top.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub configuration_set: String,
    pub from: String,
    pub public_url: String,
    pub locale: String,
}

impl Settings {
    /// Reads every setting through `get` (the process environment in the
    /// functions); errors name the variable.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let opt = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let req = |name: &'static str| opt(name).ok_or(SettingsError::Missing(name));
        fn number<T: std::str::FromStr>(name: &'static str, v: Option<String>, default: T) -> Result<T, SettingsError> {
            v.map_or(Ok(default), |v| {
                v.parse().map_err(|_| SettingsError::Invalid(name, format!("not a number: {v:?}")))
            })
        }
        let max_retries: i32 = number(SCHEDULE_MAX_RETRIES, opt(SCHEDULE_MAX_RETRIES), 10)?;
        if !(0..=185).contains(&max_retries) {
            return Err(SettingsError::Invalid(SCHEDULE_MAX_RETRIES, "must be 0..=185".into()));
        }
        let max_age_seconds: i32 = number(SCHEDULE_MAX_AGE_SECONDS, opt(SCHEDULE_MAX_AGE_SECONDS), 3600)?;
        if !(60..=86_400).contains(&max_age_seconds) {
            return Err(SettingsError::Invalid(SCHEDULE_MAX_AGE_SECONDS, "must be 60..=86400".into()));
        }
        let retention_days: i64 = number(RETENTION_DAYS, opt(RETENTION_DAYS), 400)?;
        let grace: i64 = number(RECONCILE_GRACE_MINUTES, opt(RECONCILE_GRACE_MINUTES), 15)?;
        if retention_days < 1 || grace < 1 {
            return Err(SettingsError::Invalid(RETENTION_DAYS, "retention and grace must be positive".into()));
        }
        let rules_dir = opt(RULES_DIR).map_or_else(|| PathBuf::from(DEFAULT_RULES_DIR), PathBuf::from);
        Ok(Settings {
            table: req(TABLE)?,
            rules_dir,
            schedule: ScheduleSettings {
                group: req(SCHEDULE_GROUP)?,
                target_arn: req(CHECK_FUNCTION_ARN)?,
                role_arn: req(SCHEDULER_ROLE_ARN)?,
                dlq_arn: req(SCHEDULE_DLQ_ARN)?,
                max_retries,
                max_age_seconds,
            },
            mail: [opt(SES_CONFIGURATION_SET), opt(FROM), opt(PUBLIC_URL)],
            locale: opt(LOCALE).unwrap_or_else(|| "en-US".into()),
            event_bus: opt(EVENT_BUS),
            sandbox: opt(SANDBOX_ALLOWLIST),
            retention: SignedDuration::from_hours(24 * retention_days),
            reconcile_grace: SignedDuration::from_mins(grace),
            secrets_path: opt(SECRETS_PATH),
        })
    }
}

impl Settings {
    /// The mail settings; an error names the first one missing.
    pub fn mail(&self) -> Result<MailSettings, SettingsError> {
        let [cs, from, url] = &self.mail;
        Ok(MailSettings {
            configuration_set: cs.clone().ok_or(SettingsError::Missing(SES_CONFIGURATION_SET))?,
            from: from.clone().ok_or(SettingsError::Missing(FROM))?,
            public_url: url.clone().ok_or(SettingsError::Missing(PUBLIC_URL))?,
            locale: self.locale.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn base() -> HashMap<&'static str, String> {
        SETTINGS
            .iter()
            .filter(|s| s.need != Need::Optional && !s.secret)
            .map(|s| (s.name, format!("v-{}", s.name)))
            .collect()
    }

    #[test]
    fn every_required_setting_is_enough_and_defaults_fill_the_rest() {
        let m = base();
        let s = Settings::from_env(|k| m.get(k).cloned()).unwrap();
        assert_eq!(s.table, "v-NUDGE_TABLE");
        assert_eq!(s.schedule.max_retries, 10);
        assert_eq!(s.mail().unwrap().locale, "en-US");
        assert_eq!(s.retention, SignedDuration::from_hours(24 * 400));
        assert!(s.event_bus.is_none() && s.sandbox.is_none());
    }

    #[test]
    fn a_missing_required_setting_is_named() {
        for req in SETTINGS.iter().filter(|s| s.need != Need::Optional && !s.secret) {
            let mut m = base();
            m.remove(req.name);
            let err = match Settings::from_env(|k| m.get(k).cloned()) {
                Err(e) => e,
                Ok(s) => s.mail().unwrap_err(),
            };
            assert_eq!(err, SettingsError::Missing(req.name));
        }
    }

    #[test]
    fn a_bad_number_is_named_with_its_value() {
        let mut m = base();
        m.insert(SCHEDULE_MAX_RETRIES, "lots".into());
        let err = Settings::from_env(|k| m.get(k).cloned()).unwrap_err();
        assert_eq!(err.to_string(), "NUDGE_SCHEDULE_MAX_RETRIES: not a number: \"lots\"");
        m.insert(SCHEDULE_MAX_RETRIES, "500".into());
        assert!(Settings::from_env(|k| m.get(k).cloned()).is_err());
    }
}
