//! The error type of the oracle harness.

use std::fmt;
use std::path::Path;

/// Anything that went wrong while running GNU MIG, compiling its output or reading it back.
///
/// The message is meant for humans (test failure output); it carries enough context
/// (paths, commands, compiler output) to diagnose the problem without re-running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OracleError {
    message: String,
}

impl OracleError {
    /// An error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        OracleError {
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(what: &str, path: &Path, err: std::io::Error) -> Self {
        OracleError::new(format!("{what} {}: {err}", path.display()))
    }

    /// This error with `context` prepended.
    pub fn context(self, context: impl fmt::Display) -> Self {
        OracleError::new(format!("{context}: {}", self.message))
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for OracleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OracleError {}

/// `Result` with [`OracleError`].
pub type Result<T, E = OracleError> = std::result::Result<T, E>;
