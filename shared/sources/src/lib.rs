//! nudge-sources: raw deliveries from storefronts and trackers into core
//! events. Pure: bytes and headers in, events or a typed rejection out.

pub mod segment;

pub use segment::{SegmentError, SegmentMessage};
