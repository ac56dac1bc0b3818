//! The Scheduler port on EventBridge Scheduler: one one-time `at()` schedule
//! per check, named by the check's deterministic name so a retried create
//! hits `ConflictException` (success for us). `FlexibleTimeWindow` OFF,
//! `ActionAfterCompletion` DELETE, the Check JSON as the target input
//! (Scheduler passes it to the function verbatim), a retry policy and a
//! dead-letter queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::error::DisplayErrorContext;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, Target,
};
use jiff::{SignedDuration, Timestamp};
use nudge_app::ports::{Scheduler, SchedulerError};
use nudge_core::Check;

use crate::settings::ScheduleSettings;

#[derive(Clone)]
pub struct EventBridgeScheduler {
    client: Client,
    settings: ScheduleSettings,
    /// CreateSchedule calls made (conflicts included).
    pub creates: Arc<AtomicU64>,
}

/// The `at()` expression for `due`, in UTC. A due time already past (a
/// deferral that is due now, a redelivery) is moved a minute ahead: the
/// check itself still carries its original due time.
pub fn at_expression(due: Timestamp, now: Timestamp) -> String {
    let earliest = now.saturating_add(SignedDuration::from_mins(1)).unwrap_or(now);
    let when = if due < earliest { earliest } else { due };
    format!("at({})", when.strftime("%Y-%m-%dT%H:%M:%S"))
}

fn failed<E: std::error::Error>(what: &str, e: E) -> SchedulerError {
    SchedulerError(format!("scheduler {what}: {}", DisplayErrorContext(e)))
}

impl EventBridgeScheduler {
    pub fn new(client: Client, settings: ScheduleSettings) -> EventBridgeScheduler {
        EventBridgeScheduler { client, settings, creates: Arc::default() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn group(&self) -> &str {
        &self.settings.group
    }
}

impl Scheduler for EventBridgeScheduler {
    async fn schedule(&self, check: &Check) -> Result<(), SchedulerError> {
        let input = serde_json::to_string(check).map_err(|e| SchedulerError(e.to_string()))?;
        let target = Target::builder()
            .arn(&self.settings.target_arn)
            .role_arn(&self.settings.role_arn)
            .input(input)
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(self.settings.max_retries)
                    .maximum_event_age_in_seconds(self.settings.max_age_seconds)
                    .build(),
            )
            .dead_letter_config(DeadLetterConfig::builder().arn(&self.settings.dlq_arn).build())
            .build()
            .map_err(|e| failed("target", e))?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| failed("time window", e))?;
        self.creates.fetch_add(1, Ordering::Relaxed);
        let result = self
            .client
            .create_schedule()
            .name(check.name())
            .group_name(&self.settings.group)
            .schedule_expression(at_expression(check.due, Timestamp::now()))
            .flexible_time_window(window)
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(target)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already scheduled under this name: the idempotent outcome.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conflict_exception()) => Ok(()),
            Err(e) => Err(failed("create", e)),
        }
    }

    /// No request: the check is pending in the profile (and so in the
    /// `by-due` index). The person's next event, or the reconcile sweep once
    /// it is overdue by the grace period, decides it as of when it could
    /// first have run; an event that makes the person reachable asks for it
    /// properly.
    async fn park(&self, check: &Check) -> Result<(), SchedulerError> {
        tracing::debug!(check = %check.name(), "check parked: the person cannot be emailed");
        Ok(())
    }

    async fn cancel(&self, check: &Check) -> Result<(), SchedulerError> {
        let result = self.client.delete_schedule().name(check.name()).group_name(&self.settings.group).send().await;
        match result {
            Ok(_) => Ok(()),
            // Already fired (ActionAfterCompletion DELETE) or never created.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(failed("delete", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_at_expression_is_utc_without_offset_and_never_in_the_past() {
        let now: Timestamp = "2026-11-28T18:00:00Z".parse().unwrap();
        let due: Timestamp = "2026-11-28T18:10:30.5Z".parse().unwrap();
        assert_eq!(at_expression(due, now), "at(2026-11-28T18:10:30)");
        let past: Timestamp = "2026-11-28T17:00:00Z".parse().unwrap();
        assert_eq!(at_expression(past, now), "at(2026-11-28T18:01:00)");
    }

    #[test]
    fn schedule_names_fit_the_scheduler_limits() {
        let check = Check {
            shop: "a-very-long-shop-name-indeed.myshopify.com".into(),
            profile: "p".repeat(80),
            trigger: "cart-abandoned-with-a-long-name".into(),
            episode: u32::MAX,
            due: Timestamp::MAX,
        };
        let name = check.name();
        assert!(name.len() <= 64, "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "{name}");
    }
}
