//! The Publisher port: every decision is a structured log line (no personal
//! data: ids and reasons only) and a metric; with `NUDGE_EVENT_BUS` set,
//! decisions, data exports and every accepted event also go to that
//! EventBridge bus (source `nudge`), where CRMs and analytics can subscribe
//! and an archive keeps the event log `nudge replay` reads.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use nudge_app::ports::{PublishError, Publisher};
use nudge_core::decide::Outcome;
use nudge_core::{Decision, Event, Profile};

use crate::metrics;

pub const SOURCE: &str = "nudge";
pub const DECISION: &str = "nudge decision";
pub const DATA_EXPORT: &str = "nudge data export";
pub const EVENT: &str = "nudge event";

#[derive(Clone)]
pub struct EventBridgePublisher {
    bus: Option<(Client, String)>,
}

impl EventBridgePublisher {
    /// Publishing is off without a bus, and then no client is built (one
    /// less SDK client at every cold start).
    pub fn new(sdk: &aws_config::SdkConfig, bus: Option<String>) -> EventBridgePublisher {
        EventBridgePublisher { bus: bus.map(|b| (Client::new(sdk), b)) }
    }

    async fn put(&self, detail_type: &str, detail: String) -> Result<(), PublishError> {
        let Some((client, bus)) = &self.bus else { return Ok(()) };
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(bus)
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(detail)
            .build();
        let resp = client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| PublishError(format!("eventbridge: {}", DisplayErrorContext(e))))?;
        if resp.failed_entry_count() > 0 {
            let why = resp.entries().iter().find_map(|e| e.error_code()).unwrap_or("unknown");
            return Err(PublishError(format!("eventbridge refused the event: {why}")));
        }
        Ok(())
    }
}

impl Publisher for EventBridgePublisher {
    async fn decision(&self, d: &Decision) -> Result<(), PublishError> {
        let line = serde_json::to_string(d).map_err(|e| PublishError(e.to_string()))?;
        nudge_app::ports::log_decision(d);
        match (d.decision, d.reason) {
            (Outcome::Send, _) => metrics::count(metrics::SENDS, 1),
            (_, Some(r)) => metrics::emit(metrics::SKIPS, 1.0, Some(("Reason", r.as_str()))),
            (_, None) => {}
        }
        self.put(DECISION, line).await
    }

    /// The event log: each accepted event as it was applied (with
    /// `received_at`), in nudge's own event form. It holds personal data
    /// (addresses): route it only to where such data may go.
    async fn event(&self, e: &Event) -> Result<(), PublishError> {
        if self.bus.is_none() {
            return Ok(());
        }
        let line = serde_json::to_string(e).map_err(|e| PublishError(e.to_string()))?;
        self.put(EVENT, line).await
    }

    /// A data request's export holds personal data: it goes only to the
    /// configured bus (route it to the store owner), never to the logs.
    async fn export(&self, p: &Profile) -> Result<(), PublishError> {
        if self.bus.is_none() {
            metrics::error("data_export_unrouted");
            tracing::error!(shop = %p.shop, profile = %p.id, "data request received but NUDGE_EVENT_BUS is not set: export not delivered");
            return Ok(());
        }
        let doc = serde_json::json!({ "shop": p.shop, "profile": p.id, "data": p });
        self.put(DATA_EXPORT, doc.to_string()).await
    }
}
