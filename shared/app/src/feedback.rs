//! Feedback from the mail service (delivery, bounce, complaint, open,
//! click), the same in every shell: the `ses-events` function gets it from
//! EventBridge, `nudge serve` on its admin listener. It is joined back to
//! the profile through the message record the check kept, counted for the
//! trigger variant, and folded into the profile (a hard bounce or a
//! complaint suppresses the address; opens and clicks are engagement).

use nudge_core::event::MessageRef;
use nudge_core::{Event, Identity, Trust};
use nudge_sources::ses::{Feedback, SesFeedback};

use crate::ports::{COUNTERS, Counter, MessageLog, MessageRecord, ProfileStore, Publisher, Scheduler};
use crate::usecase::{AppError, IngestPorts, ingest_for};

/// What became of one piece of feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Fed {
    /// A message record was found for it (false: mail nudge did not send,
    /// or whose record expired; nothing else happened).
    pub joined: bool,
    /// The profile changed (false for a duplicate, an erased profile or a
    /// kind that is only counted).
    pub changed: bool,
}

/// The counter a kind of feedback adds to.
fn counter(kind: &Feedback) -> Option<Counter> {
    let [_, delivered, opened, clicked, bounced, complained] = COUNTERS;
    match kind {
        Feedback::Delivery => Some(delivered),
        Feedback::Open => Some(opened),
        Feedback::Click => Some(clicked),
        Feedback::Bounce { .. } => Some(bounced),
        Feedback::Complaint => Some(complained),
        Feedback::Other(_) => None,
    }
}

/// The record of the message `feedback` is about: by SES's id, else by
/// the message's own Message-ID (mail `nudge serve` relayed through SES),
/// else from the reference header every message carries (a message whose
/// record was never written: the run stopped after sending).
async fn record_of<S: MessageLog>(store: &S, feedback: &SesFeedback) -> Result<Option<MessageRecord>, AppError> {
    if let Some(r) = store.message(&feedback.message_id).await? {
        return Ok(Some(r));
    }
    if let Some(id) = feedback.header_id.as_ref().filter(|id| **id != feedback.message_id)
        && let Some(r) = store.message(id).await?
    {
        return Ok(Some(r));
    }
    Ok(feedback.reference.as_ref().map(|r| MessageRecord {
        message_id: feedback.message_id.clone(),
        shop: r.shop.clone(),
        profile: r.profile.clone(),
        trigger: r.trigger.clone(),
        variant: r.variant.clone(),
        episode: r.episode,
    }))
}

/// Joins, counts and folds one piece of feedback.
pub async fn feedback<S, Sch, P>(ports: &IngestPorts<'_, S, Sch, P>, feedback: &SesFeedback) -> Result<Fed, AppError>
where
    S: ProfileStore + MessageLog,
    Sch: Scheduler,
    P: Publisher,
{
    let Some(record) = record_of(ports.store, feedback).await? else {
        tracing::info!(message = %feedback.message_id, kind = feedback.kind.name(), "feedback for an unknown message");
        return Ok(Fed { joined: false, changed: false });
    };
    if let Some(counter) = counter(&feedback.kind) {
        let day = jiff::tz::TimeZone::UTC.to_datetime(feedback.at).date();
        ports.store.count(&record, day, counter).await?;
    }
    let message = MessageRef { trigger: Some(record.trigger.clone()), episode: Some(record.episode) };
    let Some(kind) = feedback.event_kind(message) else { return Ok(Fed { joined: true, changed: false }) };
    let event = Event {
        id: feedback.id.clone(),
        shop: record.shop.clone(),
        occurred_at: feedback.at,
        identity: Identity::default(),
        kind,
        trust: Trust::Verified,
        received_at: None,
        time_zone: None,
    };
    let changed = ingest_for(ports, &record.profile, &event).await?;
    Ok(Fed { joined: true, changed })
}
