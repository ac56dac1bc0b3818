//! `DATA/keys`: the secrets `nudge serve` generates once and keeps. The file
//! is the alias key (32 bytes: email addresses become alias keys under it),
//! the link-signing key (32 bytes: unsubscribe and confirmation links), and
//! up to [`PREVIOUS_KEPT`] earlier link-signing keys still accepted after a
//! rotation (`nudge keys rotate`). It is created readable by its owner only;
//! a file of any other length is an error, never silently replaced: a new
//! key would break every link already sent.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};

const KEY_LEN: usize = 32;
/// Earlier link-signing keys kept by a rotation.
pub const PREVIOUS_KEPT: usize = 3;

/// The keys in force, from `DATA/keys` or the environment.
pub struct Keys {
    pub alias: Vec<u8>,
    /// The key new links are signed with.
    pub link: Vec<u8>,
    /// Earlier link keys, newest first: links they signed still verify.
    pub previous_links: Vec<Vec<u8>>,
}

/// Starts signing links with a new key in `DATA/keys`, keeping the
/// current one and the last few before it; returns the keys now in force.
pub fn rotate(data: &Path) -> Result<Keys> {
    let path = data.join("keys");
    let keys = read(&path)?.with_context(|| format!("{} does not exist: nothing to rotate", path.display()))?;
    let mut previous = vec![keys.link];
    previous.extend(keys.previous_links.into_iter().take(PREVIOUS_KEPT - 1));
    let rotated = Keys { alias: keys.alias, link: random()?, previous_links: previous };
    write(&path, &rotated)?;
    Ok(rotated)
}

/// The keys for `nudge serve`: `DATA/keys` (created on first start), each
/// overridden by its environment variable where set (`NUDGE_ALIAS_KEY`,
/// `NUDGE_UNSUBSCRIBE_KEY`, `NUDGE_UNSUBSCRIBE_KEY_PREVIOUS`).
pub fn load(data: &Path) -> Result<Keys> {
    let path = data.join("keys");
    let mut keys = match read(&path)? {
        Some(k) => k,
        None => {
            let k = Keys { alias: random()?, link: random()?, previous_links: Vec::new() };
            write(&path, &k)?;
            k
        }
    };
    if let Some(k) = from_env("NUDGE_ALIAS_KEY") {
        keys.alias = k;
    }
    if let Some(k) = from_env("NUDGE_UNSUBSCRIBE_KEY") {
        keys.link = k;
        keys.previous_links = from_env("NUDGE_UNSUBSCRIBE_KEY_PREVIOUS").into_iter().collect();
    }
    Ok(keys)
}

/// The alias key `nudge serve` would use: `NUDGE_ALIAS_KEY` if set, else
/// that of the data directory `data` (`DATA/keys`), without creating one;
/// `None` when neither exists.
pub fn alias_key(data: Option<&Path>) -> Result<Option<Vec<u8>>> {
    if let Some(k) = from_env("NUDGE_ALIAS_KEY") {
        return Ok(Some(k));
    }
    Ok(data.map(|d| read(&d.join("keys"))).transpose()?.flatten().map(|k| k.alias))
}

/// A key set in the environment (empty counts as unset).
fn from_env(name: &str) -> Option<Vec<u8>> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).map(String::into_bytes)
}

/// Reads a keys file; `None` when there is none.
fn read(path: &Path) -> Result<Option<Keys>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        eprintln!(
            "nudge: warning: {} is readable by other users (mode {:o}): run chmod 600 on it",
            path.display(),
            mode & 0o777
        );
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let n = bytes.len();
    let previous = n.checked_sub(2 * KEY_LEN).filter(|rest| rest % KEY_LEN == 0).map(|rest| rest / KEY_LEN);
    let Some(previous) = previous.filter(|p| *p <= PREVIOUS_KEPT) else {
        bail!(
            "{} is {n} bytes, not a keys file (64 bytes, plus 32 for each earlier link key): restore it from a backup. \
             A new key would break every unsubscribe link already sent, so none is generated.",
            path.display()
        );
    };
    let mut chunks = bytes.chunks_exact(KEY_LEN).map(<[u8]>::to_vec);
    let (Some(alias), Some(link)) = (chunks.next(), chunks.next()) else { unreachable!("length checked") };
    let previous_links: Vec<Vec<u8>> = chunks.take(previous).collect();
    Ok(Some(Keys { alias, link, previous_links }))
}

/// Writes the keys file atomically, readable by its owner only.
fn write(path: &Path, keys: &Keys) -> Result<()> {
    let tmp = path.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(&keys.alias)?;
    file.write_all(&keys.link)?;
    for k in &keys.previous_links {
        file.write_all(k)?;
    }
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn random() -> Result<Vec<u8>> {
    let mut b = vec![0u8; KEY_LEN];
    File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).context("no /dev/urandom for key generation")?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nudge-keys-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_new_keys_file_is_readable_by_its_owner_only_and_stable_across_starts() {
        let d = dir("new");
        let first = load(&d).unwrap();
        let mode = std::fs::metadata(d.join("keys")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load(&d).unwrap();
        assert_eq!((first.alias, first.link), (again.alias, again.link));
    }

    #[test]
    fn a_malformed_keys_file_is_an_error_and_is_left_as_it_was() {
        let d = dir("bad");
        std::fs::write(d.join("keys"), b"short").unwrap();
        let err = load(&d).err().expect("refused").to_string();
        assert!(err.contains("is 5 bytes") && err.contains("restore it"), "{err}");
        assert_eq!(std::fs::read(d.join("keys")).unwrap(), b"short", "never regenerated");
    }

    #[test]
    fn a_rotation_keeps_the_alias_key_and_the_earlier_link_keys() {
        let d = dir("rotate");
        let before = load(&d).unwrap();
        for _ in 0..5 {
            rotate(&d).unwrap();
        }
        let after = load(&d).unwrap();
        assert_eq!(after.alias, before.alias, "alias keys are not links: they never rotate");
        assert_ne!(after.link, before.link);
        assert_eq!(after.previous_links.len(), PREVIOUS_KEPT);
        let once = dir("rotate-once");
        let k = load(&once).unwrap();
        rotate(&once).unwrap();
        assert_eq!(load(&once).unwrap().previous_links, vec![k.link], "the key links were signed with stays");
    }
}
