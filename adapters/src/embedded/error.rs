//! The storage error enum and the conversion of the engines' errors into it (fjall, and redb
//! for databases written by earlier versions, which are migrated on open).
//!
//! Vendor types never cross this module's edge: callers see [`StoreError`] with a stable
//! [`StoreError::code`] that the API, logs and metric labels can use.

/// Everything that can go wrong in the embedded store.
///
/// `Clone` because one failed group commit answers every batch of the group with the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The operating system or the engine failed to read, write or fsync the database file.
    #[error("storage I/O failed: {message}")]
    Io {
        /// The vendor's description of the failure.
        message: String,
    },
    /// The batch carried an ownership epoch lower than the durable epoch of its shard.
    #[error(
        "shard {shard} is fenced: stored epoch {stored} is higher than the given epoch {given}"
    )]
    Fenced {
        /// The shard whose ownership check failed.
        shard: u32,
        /// The durable epoch of the shard.
        stored: u64,
        /// The epoch the refused batch carried.
        given: u64,
    },
    /// The store was closed (or its writer stopped) before the request could be served.
    #[error("the store is closed")]
    Closed,
    /// The database file failed a checksum or schema check and could not be repaired.
    #[error("the database is corrupt: {message}")]
    Corrupt {
        /// The vendor's description of the damage.
        message: String,
    },
    /// The request itself is malformed (reserved or empty table name, bad configuration).
    #[error("invalid storage request: {reason}")]
    Invalid {
        /// Why the request was refused.
        reason: String,
    },
}

impl StoreError {
    /// The stable, machine-readable code of this error (`storage.*`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "storage.io",
            Self::Fenced { .. } => "storage.fenced",
            Self::Closed => "storage.closed",
            Self::Corrupt { .. } => "storage.corrupt",
            Self::Invalid { .. } => "storage.invalid",
        }
    }

    pub(crate) fn io(message: impl Into<String>) -> Self {
        Self::Io {
            message: message.into(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::Invalid {
            reason: reason.into(),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        Self::io(error.to_string())
    }
}

/// Converts a vendor error into a [`StoreError`]; crate-private so vendors stay out of the API.
pub(crate) trait IntoStoreError {
    /// The Tollgate view of this vendor error.
    fn into_store_error(self) -> StoreError;
}

/// `result.store()?` instead of `result.map_err(IntoStoreError::into_store_error)?`.
pub(crate) trait StoreResultExt<T> {
    /// Converts the error side into a [`StoreError`].
    fn store(self) -> Result<T, StoreError>;
}

impl<T, E: IntoStoreError> StoreResultExt<T> for Result<T, E> {
    fn store(self) -> Result<T, StoreError> {
        self.map_err(IntoStoreError::into_store_error)
    }
}

impl IntoStoreError for fjall::Error {
    fn into_store_error(self) -> StoreError {
        match self {
            fjall::Error::Io(error) => StoreError::io(error.to_string()),
            fjall::Error::Storage(fjall::LsmError::Io(error)) => StoreError::io(error.to_string()),
            fjall::Error::Poisoned => StoreError::io(
                "an earlier write to disk failed and the store stopped taking writes; \
                 restart the node (it recovers from the journal)",
            ),
            fjall::Error::Locked => {
                StoreError::io("the database directory is in use by another process")
            }
            fjall::Error::KeyspaceDeleted => StoreError::io("the table was deleted"),
            other => StoreError::Corrupt {
                message: other.to_string(),
            },
        }
    }
}

impl IntoStoreError for redb::StorageError {
    fn into_store_error(self) -> StoreError {
        match self {
            redb::StorageError::Corrupted(message) => StoreError::Corrupt { message },
            redb::StorageError::ValueTooLarge(len) => {
                StoreError::invalid(format!("a key or value of {len} bytes is too large"))
            }
            other => StoreError::io(other.to_string()),
        }
    }
}

impl IntoStoreError for redb::DatabaseError {
    fn into_store_error(self) -> StoreError {
        match self {
            redb::DatabaseError::Storage(error) => error.into_store_error(),
            redb::DatabaseError::RepairAborted => StoreError::Corrupt {
                message: "repair of the database file was aborted".to_owned(),
            },
            redb::DatabaseError::UpgradeRequired(version) => StoreError::Corrupt {
                message: format!("database file format {version} needs an upgrade"),
            },
            other => StoreError::io(other.to_string()),
        }
    }
}

impl IntoStoreError for redb::TransactionError {
    fn into_store_error(self) -> StoreError {
        match self {
            redb::TransactionError::Storage(error) => error.into_store_error(),
            other => StoreError::io(other.to_string()),
        }
    }
}

impl IntoStoreError for redb::TableError {
    fn into_store_error(self) -> StoreError {
        match self {
            redb::TableError::Storage(error) => error.into_store_error(),
            // A table with the right name but the wrong shape means the file is not ours.
            redb::TableError::TableTypeMismatch { .. }
            | redb::TableError::TableIsMultimap(_)
            | redb::TableError::TableIsNotMultimap(_)
            | redb::TableError::TypeDefinitionChanged { .. } => StoreError::Corrupt {
                message: self.to_string(),
            },
            other => StoreError::io(other.to_string()),
        }
    }
}

impl IntoStoreError for redb::CommitError {
    fn into_store_error(self) -> StoreError {
        match self {
            redb::CommitError::Storage(error) => error.into_store_error(),
            other => StoreError::io(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(StoreError::io("x").code(), "storage.io");
        let fenced = StoreError::Fenced {
            shard: 1,
            stored: 3,
            given: 2,
        };
        assert_eq!(fenced.code(), "storage.fenced");
        assert_eq!(StoreError::Closed.code(), "storage.closed");
        let corrupt = StoreError::Corrupt {
            message: String::new(),
        };
        assert_eq!(corrupt.code(), "storage.corrupt");
        assert_eq!(StoreError::invalid("x").code(), "storage.invalid");
    }

    #[test]
    fn vendor_corruption_maps_to_corrupt() {
        let error = redb::StorageError::Corrupted("bad checksum".to_owned()).into_store_error();
        assert_eq!(error.code(), "storage.corrupt");
        let error = redb::DatabaseError::RepairAborted.into_store_error();
        assert_eq!(error.code(), "storage.corrupt");
        let error = redb::TableError::TableIsMultimap("t".to_owned()).into_store_error();
        assert_eq!(error.code(), "storage.corrupt");
    }
}
