//! The one error type of the load generator.

use std::path::PathBuf;

/// Why a load-test command could not run (failed requests are counted in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A flag or value out of range, or a refused target.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A subscribers file that does not parse.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The node cannot be used (e.g. every top-up failed).
    #[error("node: {0}")]
    Node(String),
    /// The fsync probe failed.
    #[error("fsync probe: {0}")]
    Probe(String),
    /// A histogram could not be built or recorded to.
    #[error("histogram: {0}")]
    Histogram(String),
    /// A worker thread panicked (a bug).
    #[error("a worker thread stopped unexpectedly")]
    Worker,
}

impl LoadError {
    /// Wraps an IO error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> LoadError {
        LoadError::Io {
            path: path.into(),
            source,
        }
    }
}
