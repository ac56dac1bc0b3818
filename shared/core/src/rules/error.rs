//! Rules errors: each points at a file, line, column and key.

use std::fmt;
use std::ops::Range;

/// A rules file problem, pointing at the place to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The key (or `trigger.<id>.<key>` path) the problem is about.
    pub field: String,
    pub message: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}: {}", self.file, self.line, self.column, self.field, self.message)
    }
}

/// All problems found in one rules file (at least one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RulesErrors(pub Vec<RulesError>);

impl fmt::Display for RulesErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

pub(super) fn error_at(src: &str, file: &str, span: Range<usize>, field: String, message: &str) -> RulesError {
    let start = span.start.min(src.len());
    let before = &src[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    RulesError {
        file: file.to_owned(),
        line,
        column,
        field: if field.is_empty() { "(file)".into() } else { field },
        message: message.to_owned(),
    }
}

/// Best-effort name of the key a toml error points at: the key itself (unknown
/// field) or the nearest `key =` before the value on the same line.
pub(super) fn field_at(src: &str, span: &Range<usize>) -> String {
    let start = span.start.min(src.len());
    let is_key = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let after: String = src[start..].chars().take_while(|c| is_key(*c)).collect();
    let rest = src[start + after.len()..].trim_start_matches([' ', '\t']);
    if !after.is_empty() && rest.starts_with('=') {
        return after;
    }
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    let head = &src[line_start..start];
    if let Some(eq) = head.rfind('=') {
        let key: String = head[..eq].trim_end().chars().rev().take_while(|c| is_key(*c)).collect();
        if !key.is_empty() {
            return key.chars().rev().collect();
        }
    }
    String::new()
}
