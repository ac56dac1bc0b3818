//! SES throttling and permanent rejections. moto never throttles, so these
//! paths are covered with aws-smithy-mocks: the SDK client is real, its
//! responses are scripted per request.

use std::time::Duration;

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::operation::send_email::{SendEmailError, SendEmailOutput};
use aws_sdk_sesv2::types::error::{
    LimitExceededException, MessageRejected, SendingPausedException, TooManyRequestsException,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use jiff::Timestamp;
use nudge_app::bundle::Bundle;
use nudge_app::compose::{Composed, Composer};
use nudge_app::ports::{MailError, Mailer, Outgoing};
use nudge_app::retry::SEND_ATTEMPTS;
use nudge_app::unsubscribe::UnsubscribeKey;
use nudge_aws::ses::SesMailer;
use nudge_core::{Check, Profile};

fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn outgoing() -> Outgoing {
    let profile: Profile =
        serde_json::from_slice(&std::fs::read(repo().join("examples/profiles/cart-abandoner.json")).unwrap()).unwrap();
    let check = Check {
        shop: profile.shop.clone(),
        profile: profile.id.clone(),
        trigger: "cart-abandoned".into(),
        episode: 1,
        due: Timestamp::now(),
    };
    Outgoing { check, variant: "a".into(), profile }
}

fn throttled() -> SendEmailError {
    SendEmailError::TooManyRequestsException(
        TooManyRequestsException::builder().message("Maximum sending rate exceeded.").build(),
    )
}

/// The cart reminder of `outgoing()`, rendered with the example rules.
fn email(m: &Outgoing) -> Composed {
    let ex = repo().join("examples");
    let b = Bundle::load(&ex.join("triggers.toml"), &ex.join("templates"), Some(&ex.join("catalogue.json"))).unwrap();
    let composer = Composer {
        rules: b.rules,
        templates: b.templates,
        catalogues: std::sync::Arc::new(nudge_app::Catalogues::new(b.catalogue)),
        from: "Acme <shop@example.com>".into(),
        public_url: "https://u.example".into(),
        locale: "en-US".into(),
        unsubscribe_key: UnsubscribeKey::new("k"),
    };
    composer.compose(m, Timestamp::now()).unwrap()
}

fn mailer(ses_rules: &[&Rule]) -> SesMailer {
    let ses: Client = mock_client!(aws_sdk_sesv2, RuleMode::MatchAny, ses_rules, nudge_aws::ses::one_attempt);
    let mut m = SesMailer::new(ses, "Acme <shop@example.com>".into(), "nudge".into());
    m.retry.first_backoff = Duration::from_millis(1);
    m.retry.max_backoff = Duration::from_millis(4);
    m
}

/// Sends `outgoing()` through `m`.
async fn send_outgoing(m: &SesMailer) -> Result<String, MailError> {
    let out = outgoing();
    m.send(&out, &email(&out)).await
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_until_ses_accepts() {
    let send = mock!(Client::send_email)
        .sequence()
        .error(throttled)
        .times(2)
        .output(|| SendEmailOutput::builder().message_id("m-1").build())
        .build();
    let id = send_outgoing(&mailer(&[&send])).await.unwrap();
    assert_eq!(id, "m-1");
    assert_eq!(send.num_calls(), 3, "two throttled attempts, then the accepted one");
}

#[tokio::test]
async fn a_burst_of_throttling_longer_than_the_attempt_count_is_waited_out() {
    // A burst (quiet hours ending, every deferred check due at once) can
    // throttle one message many times; it is retried for a time, not a count.
    let throttles = 3 * SEND_ATTEMPTS as usize;
    let send = mock!(Client::send_email)
        .sequence()
        .error(throttled)
        .times(throttles)
        .output(|| SendEmailOutput::builder().message_id("m-3").build())
        .build();
    assert_eq!(send_outgoing(&mailer(&[&send])).await.unwrap(), "m-3");
    assert_eq!(send.num_calls(), throttles + 1);
}

#[tokio::test]
async fn throttling_that_never_ends_gives_up_when_the_time_budget_is_spent() {
    let send = mock!(Client::send_email).then_error(throttled);
    let mut m = mailer(&[&send]);
    m.retry.throttle_budget = Duration::from_millis(60);
    let started = std::time::Instant::now();
    let err = send_outgoing(&m).await.unwrap_err();
    assert!(matches!(err, MailError::NotAccepted(_)), "{err}");
    assert!(err.to_string().contains("TooManyRequests"), "{err}");
    // It stops before a wait would overrun the budget.
    let (budget, longest) = (m.retry.throttle_budget, m.retry.max_backoff);
    assert!(started.elapsed() >= budget - longest, "gave up early: {:?}", started.elapsed());
    assert!(send.num_calls() > SEND_ATTEMPTS as usize, "{} calls", send.num_calls());
}

#[tokio::test]
async fn the_daily_quota_and_a_paused_account_are_not_accepted_and_not_retried_here() {
    for error in [
        || SendEmailError::LimitExceededException(LimitExceededException::builder().message("quota").build()),
        || SendEmailError::SendingPausedException(SendingPausedException::builder().message("paused").build()),
    ] {
        let send = mock!(Client::send_email).then_error(error);
        let err = send_outgoing(&mailer(&[&send])).await.unwrap_err();
        assert!(matches!(err, MailError::NotAccepted(_)), "{err}");
        assert_eq!(send.num_calls(), 1, "the check defers it; nothing is retried in the invocation");
    }
}

#[tokio::test]
async fn a_server_error_after_the_request_went_out_is_unconfirmed_and_never_retried() {
    // SendEmail has no idempotency key: SES may have accepted the message.
    let send = mock!(Client::send_email).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(500).unwrap(),
            aws_smithy_types::body::SdkBody::from(r#"{"message":"internal"}"#),
        )
    });
    let err = send_outgoing(&mailer(&[&send])).await.unwrap_err();
    assert!(matches!(err, MailError::Unconfirmed(_)), "{err}");
    assert_eq!(send.num_calls(), 1);
}

#[tokio::test]
async fn the_sending_client_makes_one_attempt_per_call() {
    // The SDK's own retries would resend a SendEmail whose answer was lost.
    let sdk = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
    let client = nudge_aws::ses::client(&sdk);
    assert_eq!(client.config().retry_config().map(|r| r.max_attempts()), Some(1));
}

#[tokio::test]
async fn a_permanent_rejection_is_not_retried_and_does_not_quote_the_address() {
    let send = mock!(Client::send_email).then_error(|| {
        SendEmailError::MessageRejected(
            MessageRejected::builder().message("Email address is not verified: ada@example.com").build(),
        )
    });
    let err = send_outgoing(&mailer(&[&send])).await.unwrap_err();
    assert!(matches!(err, MailError::Rejected(_)), "{err}");
    assert_eq!(send.num_calls(), 1);
    assert!(!err.to_string().contains('@'), "{err}");
}

#[tokio::test]
async fn the_raw_message_carries_both_unsubscribe_headers_and_the_episode_tags() {
    let send = mock!(Client::send_email)
        .match_requests(|r| {
            let raw =
                r.content().and_then(|c| c.raw()).map(|r| String::from_utf8_lossy(r.data().as_ref()).into_owned());
            let tags: Vec<_> = r.email_tags().iter().map(|t| (t.name(), t.value())).collect();
            raw.is_some_and(|m| {
                m.contains("List-Unsubscribe: <https://u.example/unsubscribe?")
                    && m.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
                    && m.contains("X-Nudge-Ref: s=")
            }) && r.configuration_set_name() == Some("nudge")
                && tags.contains(&("trigger", "cart-abandoned"))
                && tags.contains(&("variant", "a"))
                && tags.contains(&("episode", "1"))
                && tags.iter().any(|(k, v)| *k == "shop" && !v.contains('.'))
        })
        .then_output(|| SendEmailOutput::builder().message_id("m-2").build());
    assert_eq!(send_outgoing(&mailer(&[&send])).await.unwrap(), "m-2");
}
