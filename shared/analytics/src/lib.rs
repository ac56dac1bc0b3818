//! Marketer analytics over order histories, pure (no I/O): the BG/NBD
//! model of a customer base (who is still alive, how many orders next) and
//! RFM scores with named segments. `nudge segments` feeds them from event
//! logs; docs/analytics.md explains each method, its assumptions and limits.

pub mod bgnbd;
pub mod funnel;
mod optimize;
pub mod rfm;
mod special;
