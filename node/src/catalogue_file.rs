//! Loading a catalogue from disk: prefix files are resolved relative to the catalogue file.

use std::path::Path;

use tollgate_domain::catalogue::{Catalogue, Problems};

/// Why a catalogue could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file itself cannot be read.
    #[error("cannot read catalogue {path}: {source}")]
    Read {
        /// Path.
        path: String,
        /// IO error.
        source: std::io::Error,
    },
    /// The catalogue is invalid; every problem is listed.
    #[error("{0}")]
    Invalid(Problems),
}

/// Reads and validates a catalogue file.
pub fn load(path: &Path) -> Result<Catalogue, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path.display().to_string();
    let mut read =
        |relative: &str| std::fs::read_to_string(dir.join(relative)).map_err(|e| e.to_string());
    Catalogue::from_toml(&text, &name, &mut read).map_err(LoadError::Invalid)
}
