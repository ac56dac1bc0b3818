//! nudge-bench: what `make bench` runs (the binaries in `src/bin`), and
//! [`runtime_api`], a local Lambda Runtime API that the init benchmark and
//! the functions' own tests start the real function binaries under.

pub mod runtime_api;
