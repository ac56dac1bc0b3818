//! Prints the settings list (shared/aws/src/settings.rs) as JSON, for
//! scripts/check_infra.py, which checks SAM, Terraform, the cargo-lambda
//! metadata and docs/deploy.md against it.

use nudge_aws::settings::{Need, SETTINGS};

fn main() {
    let list: Vec<_> = SETTINGS
        .iter()
        .map(|s| {
            let need = match s.need {
                Need::All => "all",
                Need::Mail => "mail",
                Need::Optional => "optional",
            };
            serde_json::json!({ "name": s.name, "secret": s.secret, "need": need, "doc": s.doc })
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
}
