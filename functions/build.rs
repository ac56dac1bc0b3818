//! Build script of the seven Lambda functions (and, through nudge-aws, of
//! the hello-world baseline `init_bench` compares them with): on Linux they
//! are linked as position-dependent executables (`-no-pie`).
//!
//! Why: a position-independent executable is relocated by the dynamic
//! loader at every start. These binaries hold ~25,000 relative relocations
//! (mostly vtables of the AWS SDK's trait objects, ~380 KB), so each cold
//! start copied and wrote ~100 pages before `main`: 0.1–0.7 ms of a
//! 4–7 ms init (README, Performance). Linked at a fixed address they need
//! none.
//!
//! The price: the executable's own code and data are at the same address
//! in every process (shared libraries, heap and stack stay randomized), as
//! with Go, which links its Linux binaries this way by default. To keep
//! ASLR for the executable too, build with `NUDGE_LAMBDA_PIE=1`.

fn main() {
    println!("cargo:rerun-if-env-changed=NUDGE_LAMBDA_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let pie = std::env::var("NUDGE_LAMBDA_PIE").is_ok_and(|v| !v.is_empty() && v != "0");
    if linux && !pie {
        // Every target this package links (bins; for nudge-aws, its examples and tests).
        println!("cargo:rustc-link-arg=-no-pie");
    }
}
