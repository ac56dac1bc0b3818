//! nudge-app: the ports, their in-memory adapters, and the use cases every
//! shell runs (`ingest`, `run_check`, `reconcile`, `feedback`, and `Replay`
//! for backtesting). No AWS and no SQLite in here.

pub mod attribution;
pub mod bundle;
pub mod catalogue;
pub mod compose;
pub mod feedback;
pub mod http;
pub mod identity;
pub mod memory;
pub mod ports;
pub mod replay;
pub mod retry;
pub mod shard;
pub mod unsubscribe;
pub mod usecase;

pub use catalogue::Catalogues;
pub use identity::{Alias, AliasKey, AliasKind};
pub use replay::{Replay, Summary, now_or_never};
pub use usecase::{
    AppError, CheckPorts, Checked, IngestPorts, Ingested, Reconciled, ingest, ingest_for, ingest_message, reconcile,
    run_check,
};
