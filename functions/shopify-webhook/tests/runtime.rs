//! The real `shopify-webhook` binary serving an invocation end to end under
//! a local Runtime API: the function-URL event of `events/` arrives through
//! `GET .../next`, the handler runs on the function's runtime, and the
//! answer comes back through `POST .../response`. The function here has a
//! different shop secret from the one the event was signed with, so the
//! answer is a 401 and no AWS call is made; the emulator tests cover the
//! handler's path through DynamoDB and the Scheduler.

use std::path::Path;

use nudge_bench::runtime_api::invoke_once;

#[test]
fn a_delivery_signed_with_another_secret_is_answered_401_through_the_runtime_api() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let event = std::fs::read(repo.join("events/shopify-webhook.checkouts-create.json")).unwrap();
    let run = invoke_once(Path::new(env!("CARGO_BIN_EXE_shopify-webhook")), &repo.join("examples"), event).unwrap();
    let (kind, body) = run.answer.expect("no answer within 30 s");
    assert_eq!(kind, "response", "{}", String::from_utf8_lossy(&body));
    let response: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(response["statusCode"], 401, "{response}");
    assert_eq!(run.polls, 2, "one poll for the event, one for the next");
}
