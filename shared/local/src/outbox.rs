//! The local mailer: each message as an RFC 5322 `.eml` file in
//! `DATA/outbox/` (beside an `.html` preview for the dashboard) and, when an
//! SMTP server is configured, also sent there — the same bytes. The message
//! id returned is the local part of its Message-ID header.

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
                if e.is_permanent() {
                    Failure::Permanent(e)
                } else if e.is_transient() {
                    Failure::Throttled(e)
                } else {
                    Failure::Transient(e)
                }
            })
        };
        match self.retry.run(attempt, tokio::time::sleep).await {
            Ok(()) => Ok(()),
            Err(GaveUp { error, permanent: true, .. }) => {
                Err(MailError::Rejected(format!("smtp refused the message: {}", status(&error))))
            }
            Err(GaveUp { error, attempts, .. }) => {
                Err(MailError::Unavailable(format!("smtp after {attempts} attempts: {}", status(&error))))
            }
        }
    }
}

/// What went wrong, without the server's free text (which may echo the
/// recipient's address).
fn status(e: &lettre::transport::smtp::Error) -> String {
    match e.status() {
        Some(code) => format!("reply {code}"),
        None if e.is_timeout() => "timed out".into(),
        None => "connection failed".into(),
    }
}

impl Mailer for Outbox {
    async fn send(&self, m: &Outgoing, c: &Composed) -> Result<String, MailError> {
        // Named after the profile first, so an erase finds the person's mail.
        let name = format!("{}.{}", m.profile.id, c.id);
        let path = self.dir.join(format!("{name}.eml"));
        std::fs::write(&path, &c.bytes).map_err(|e| MailError::Unavailable(format!("outbox write failed: {e}")))?;
        // The dashboard shows each email as it renders.
        let _ = std::fs::write(self.dir.join(format!("{name}.html")), &c.html);
        if let Some(smtp) = &self.smtp {
            smtp.send(&c.to, &c.bytes).await?;
        }
        Ok(c.id.clone())
    }
}
