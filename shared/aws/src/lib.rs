//! AWS adapters land with the AWS shell issue; this crate is a placeholder member of the workspace.
