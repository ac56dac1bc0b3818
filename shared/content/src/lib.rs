//! Email rendering lands with the content issue; this crate is a placeholder member of the workspace.
