//! CloudWatch Embedded Metric Format: one JSON line on stdout per metric,
//! which Lambda ships to CloudWatch Logs and CloudWatch turns into metrics
//! (namespace `nudge`). No client, no network call.

use std::io::Write;

pub const NAMESPACE: &str = "nudge";

/// The metric names the functions emit (the alarms and the dashboard use them).
pub const EVENTS_INGESTED: &str = "EventsIngested";
pub const DELIVERIES_REJECTED: &str = "DeliveriesRejected";
pub const CHECKS_RUN: &str = "ChecksRun";
pub const SENDS: &str = "Sends";
pub const SKIPS: &str = "Skips";
pub const FEEDBACK: &str = "Feedback";
pub const ERRORS: &str = "Errors";
/// SES answered `TooManyRequestsException` (the send is retried).
pub const SES_THROTTLED: &str = "SesThrottled";

/// The function name, for the `Function` dimension.
fn function() -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into())
}

/// The EMF document for `value` of `name`, with the `Function` dimension
/// and, when given, one more (e.g. `Reason`).
pub fn document(name: &str, value: f64, extra: Option<(&str, &str)>, at_ms: i64, function: &str) -> serde_json::Value {
    let mut dims = vec!["Function"];
    let mut doc = serde_json::json!({ "Function": function, name: value });
    if let Some((k, v)) = extra {
        dims.push(k);
        doc[k] = serde_json::Value::String(v.to_owned());
    }
    doc["_aws"] = serde_json::json!({
        "Timestamp": at_ms,
        "CloudWatchMetrics": [{
            "Namespace": NAMESPACE,
            "Dimensions": [dims],
            "Metrics": [{ "Name": name, "Unit": "Count" }],
        }],
    });
    doc
}

pub fn emit(name: &str, value: f64, extra: Option<(&str, &str)>) {
    let doc = document(name, value, extra, jiff::Timestamp::now().as_millisecond(), &function());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{doc}");
}

pub fn count(name: &str, n: u64) {
    if n > 0 {
        emit(name, n as f64, None);
    }
}

/// An error on our side, by where it happened.
pub fn error(at: &str) {
    emit(ERRORS, 1.0, Some(("Stage", at)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_document_declares_its_metric_and_dimensions() {
        let d = document(SKIPS, 2.0, Some(("Reason", "no_consent")), 1_700_000_000_000, "check");
        assert_eq!(d["Skips"], 2.0);
        assert_eq!(d["Reason"], "no_consent");
        assert_eq!(d["Function"], "check");
        let m = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "nudge");
        assert_eq!(m["Dimensions"][0], serde_json::json!(["Function", "Reason"]));
        assert_eq!(m["Metrics"][0]["Name"], "Skips");
    }
}
