//! nudge-core: the pure centre of nudge.
//!
//! Every decision is a function of (profile, event or check, rules, time).
//! Nothing here reads a clock, a network or a disk, and nothing panics on
//! input: the three shells (Lambda functions, `nudge serve`, `nudge replay`)
//! run exactly this code.

pub mod catalogue;
pub mod condition;
pub mod decide;
pub mod event;
pub mod filter;
pub mod hash;
pub mod model;
pub mod profile;
pub mod rules;
pub mod time;

pub use catalogue::{CatalogueProduct, ProductChange};
pub use decide::{Check, Decision, Delivery, Outcome, Reason, assign_variant, decide, in_holdout};
pub use event::{
    Basket, ConsentSource, ConsentState, ConsentUpdate, Event, EventId, EventKind, Identity, Line, Order, Product,
    Trust,
};
pub use profile::{Applied, Effect, Profile};
pub use rules::{RulesError, RulesErrors, Trigger, Triggers};
pub use time::Dur;
