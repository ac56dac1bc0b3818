//! Sets `NUDGE_CONTENT_BUILD_ID`: a fingerprint of the code that compiles
//! and checks templates — this crate's and nudge-core's sources, the locked
//! versions of the two libraries that do that work (mrml, minijinja) and
//! the crate version.
//!
//! A rules layer ships templates compiled and checked by `nudge check
//! --compile`; a binary trusts that work only when its own build id matches
//! the one it was done with (see nudge-app's `bundle`), and otherwise
//! compiles and checks again at start-up. A changed source file changes the
//! id, so a stale layer costs start-up time, never a wrong email.

use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut inputs = Vec::new();
    for dir in [manifest.join("src"), manifest.join("../core/src")] {
        println!("cargo:rerun-if-changed={}", dir.display());
        files(&dir, &mut inputs);
    }
    inputs.sort();
    // SipHash with fixed keys: the same inputs give the same id with one
    // toolchain; another toolchain may give another id, which only means
    // compiling again at start-up.
    let mut h = DefaultHasher::new();
    h.write(env!("CARGO_PKG_VERSION").as_bytes());
    for path in &inputs {
        h.write(path.strip_prefix(&manifest).unwrap_or(path).to_string_lossy().as_bytes());
        h.write(&std::fs::read(path).unwrap_or_default());
    }
    // Only these packages' entries: a change elsewhere in the lock (a test
    // dependency, say) leaves the templates as they were.
    let lock = manifest.join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let lock = std::fs::read_to_string(&lock).unwrap_or_default();
    for package in lock.split("[[package]]") {
        if ["mrml", "minijinja"].iter().any(|name| package.contains(&format!("name = \"{name}\"\n"))) {
            h.write(package.as_bytes());
        }
    }
    println!("cargo:rustc-env=NUDGE_CONTENT_BUILD_ID={:016x}", h.finish());
}
