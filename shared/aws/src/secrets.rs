//! Secrets (webhook keys, write keys, signing keys) are read once at init:
//! from SSM Parameter Store SecureString parameters under
//! `NUDGE_SECRETS_PATH` in production, or — only when that is unset, for
//! local runs — from plain environment variables of the same names.

use std::collections::HashMap;

use crate::settings::SETTINGS;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("reading secrets under {path}: {message}")]
    Unavailable { path: String, message: String },
    #[error("secret {0} is not set")]
    Missing(&'static str),
}

/// Secret values by setting name. Debug output never shows a value.
pub struct Secrets {
    values: HashMap<String, String>,
    from: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.values.keys().collect();
        names.sort();
        f.debug_struct("Secrets").field("from", &self.from).field("names", &names).finish()
    }
}

impl Secrets {
    /// Every secret of [`SETTINGS`] found in the environment.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Secrets {
        let values =
            SETTINGS.iter().filter(|s| s.secret).filter_map(|s| Some((s.name.to_owned(), get(s.name)?))).collect();
        Secrets { values, from: "environment".into() }
    }

    /// Every parameter directly under `path` (one `GetParametersByPath`
    /// round trip per ten parameters), decrypted; names are the last path
    /// segment, e.g. `/nudge/prod/NUDGE_SHOPIFY_SECRET`.
    pub async fn from_ssm(client: &aws_sdk_ssm::Client, path: &str) -> Result<Secrets, SecretsError> {
        let path = format!("/{}/", path.trim_matches('/'));
        let mut values = HashMap::new();
        let mut token = None;
        loop {
            let resp = client
                .get_parameters_by_path()
                .path(&path)
                .with_decryption(true)
                .recursive(false)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| SecretsError::Unavailable {
                    path: path.clone(),
                    message: aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
                })?;
            for p in resp.parameters() {
                if let (Some(name), Some(value)) = (p.name(), p.value()) {
                    let short = name.rsplit('/').next().unwrap_or(name);
                    values.insert(short.to_owned(), value.to_owned());
                }
            }
            token = resp.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(Secrets { values, from: path })
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).filter(|v| !v.trim().is_empty()).cloned()
    }

    pub fn require(&self, name: &'static str) -> Result<String, SecretsError> {
        self.get(name).ok_or(SecretsError::Missing(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_names_secrets_but_never_shows_a_value() {
        let s = Secrets::from_env(|k| (k == "NUDGE_ALIAS_KEY").then(|| "hunter2".to_owned()));
        let shown = format!("{s:?}");
        assert!(shown.contains("NUDGE_ALIAS_KEY"));
        assert!(!shown.contains("hunter2"));
        assert_eq!(s.require("NUDGE_ALIAS_KEY").unwrap(), "hunter2");
        assert!(matches!(s.require("NUDGE_UNSUBSCRIBE_KEY"), Err(SecretsError::Missing("NUDGE_UNSUBSCRIBE_KEY"))));
    }
}
