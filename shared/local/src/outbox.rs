//! The local mailer: each message as an RFC 5322 `.eml` file in
//! `DATA/outbox/` (beside an `.html` preview for the dashboard) and, when an
//! SMTP server is configured, also sent there — the same bytes. The message
//! id returned is the local part of its Message-ID header.
//!
//! The `.eml` file is written only once the message is accepted (by the
//! SMTP server, when there is one), and atomically (a temporary file,
//! synced, then renamed): an email file exists exactly when its send does.

use std::path::PathBuf;

use lettre::address::Envelope;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use nudge_app::compose::Composed;
use nudge_app::ports::{MailError, Mailer, Outgoing};
use nudge_app::retry::{Failure, GaveUp, Retry};

pub struct Outbox {
    pub dir: PathBuf,
    pub smtp: Option<Smtp>,
}

/// An SMTP relay and the envelope sender.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Address,
    /// A 4xx reply (a relay's rate limit, "try again later") is retried for
    /// the throttle budget, a dropped connection or timeout a few times:
    /// the same policy as SES in the Lambda functions.
    pub retry: Retry,
}

impl Smtp {
    /// `url`: `smtp://host:port` (plain, e.g. a local catcher),
    /// `smtp://host:587?tls=required` (STARTTLS) or `smtps://user:pass@host:465`.
    /// `from` is the configured sender, e.g. `Shop <shop@example.com>`.
    pub fn new(url: &str, from: &str) -> anyhow::Result<Smtp> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("smtp_url: {e} (expected smtp://host:port or smtps://user:pass@host:465)"))?
            .build();
        let mailbox: lettre::message::Mailbox =
            from.parse().map_err(|e| anyhow::anyhow!("from {from:?} is not an address: {e}"))?;
        Ok(Smtp { transport, from: mailbox.email, retry: Retry::default() })
    }

    async fn send(&self, to: &str, bytes: &[u8]) -> Result<(), MailError> {
        // The address is never quoted in an error: it is personal data.
        let to: Address = to.parse().map_err(|_| MailError::Rejected("recipient is not a valid address".into()))?;
        let envelope = Envelope::new(Some(self.from.clone()), vec![to])
            .map_err(|e| MailError::Rejected(format!("envelope: {e}")))?;
        let attempt = || async {
            self.transport.send_raw(&envelope, bytes).await.map(drop).map_err(|e| {
                // A 4xx reply: the server did not take the message; safe to
                // try again. Nothing else is retried (it may have been
                // taken).
                if e.is_transient() { Failure::Throttled(e) } else { Failure::Permanent(e) }
            })
        };
        match self.retry.run(attempt, tokio::time::sleep).await {
            Ok(()) => Ok(()),
            Err(GaveUp { error, attempts, .. }) => Err(classify(&error, attempts)),
        }
    }
}

/// What is known about a message the SMTP server did not confirm: refused
/// (5xx), not taken (4xx, no connection, no TLS: tried again later), or
/// unknown (a timeout or a dropped connection once the session was under
/// way: never sent again).
fn classify(e: &lettre::transport::smtp::Error, attempts: u32) -> MailError {
    let refused = std::iter::successors(std::error::Error::source(e), |s| s.source()).any(|s| {
        s.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    if e.is_permanent() {
        MailError::Rejected(format!("smtp refused the message: {}", status(e)))
    } else if e.is_transient() {
        MailError::NotAccepted(format!("smtp after {attempts} attempts: {}", status(e)))
    } else if refused || e.is_tls() {
        MailError::NotAccepted(format!("smtp: {}", status(e)))
    } else {
        MailError::Unconfirmed(format!("smtp: {}", status(e)))
    }
}

/// What went wrong, without the server's free text (which may echo the
/// recipient's address).
fn status(e: &lettre::transport::smtp::Error) -> String {
    match e.status() {
        Some(code) => format!("reply {code}"),
        None if e.is_timeout() => "timed out".into(),
        None if e.is_tls() => "TLS failed".into(),
        None => "connection failed".into(),
    }
}

impl Mailer for Outbox {
    async fn send(&self, m: &Outgoing, c: &Composed) -> Result<String, MailError> {
        // Named after the profile first, so an erase finds the person's
        // mail; then when and which trigger, so a listing reads as a log;
        // then the message's own reference. No address or name.
        let trigger: String = m
            .check
            .trigger
            .chars()
            .map(|ch| if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' { ch } else { '_' })
            .collect();
        let when = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
        let name = format!("{}.{when}.{trigger}.{}", m.profile.id, c.id);
        let Some(smtp) = &self.smtp else {
            // The file is the delivery: not written, not sent.
            write_atomically(&self.dir, &format!("{name}.eml"), &c.bytes)
                .map_err(|e| MailError::NotAccepted(format!("outbox write failed: {e}")))?;
            self.preview(&name, c);
            return Ok(c.id.clone());
        };
        smtp.send(&c.to, &c.bytes).await?;
        if let Err(e) = write_atomically(&self.dir, &format!("{name}.eml"), &c.bytes) {
            // Sent, but with no copy the send cannot be shown as made.
            return Err(MailError::Unconfirmed(format!("sent over SMTP; outbox write failed: {e}")));
        }
        self.preview(&name, c);
        Ok(c.id.clone())
    }
}

impl Outbox {
    /// The HTML the dashboard shows beside the `.eml` (best effort).
    fn preview(&self, name: &str, c: &Composed) {
        if let Err(e) = write_atomically(&self.dir, &format!("{name}.html"), c.html.as_bytes()) {
            tracing::warn!(error = %e, "outbox preview not written");
        }
    }
}

/// Writes `dir/name` so that it is either absent or complete: a hidden
/// temporary file in the same directory, synced, then renamed over.
pub fn write_atomically(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))
}
