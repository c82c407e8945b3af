//! The storage contract of the ledger. Implementations: the embedded store (default, in
//! `tollgate-adapters`), ScyllaDB later, and an in-memory one for unit tests. Every
//! implementation must pass the same contract tests.

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::{Account, Entry};
use crate::ids::SubscriberId;

/// The owner of a shard and its epoch: writes carry it, and a store refuses writes from an older
/// epoch than the one it has seen for the shard (fencing of stale owners).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fence {
    /// Shard.
    pub shard: u32,
    /// Owner epoch.
    pub epoch: u64,
}

/// One subscriber's durable change: the new account snapshot, the entries that produced it and
/// the answers to remember for idempotency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountWrite {
    /// Fencing token of the writer.
    pub fence: Fence,
    /// The account after the change.
    pub account: Account,
    /// Entries appended, numbered from `first_seq`.
    pub entries: Vec<Entry>,
    /// Sequence number of the first entry (the account's entry count before the change).
    pub first_seq: u64,
    /// Idempotency keys and the answers given, stored with the time they were given.
    pub answers: Vec<(SmolStr, Vec<u8>)>,
    /// Rated usage records to keep for queries (`cdr id`, serialized rating).
    pub usage: Vec<(SmolStr, Vec<u8>)>,
}

/// Storage failures, with stable codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// IO or engine failure.
    #[error("storage failure: {0}")]
    Io(String),
    /// A newer owner holds the shard.
    #[error("write fenced: shard {shard} is at epoch {stored}, writer has {given}")]
    Fenced {
        /// Shard.
        shard: u32,
        /// Stored epoch.
        stored: u64,
        /// Writer's epoch.
        given: u64,
    },
    /// Stored data does not decode.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Io(_) => "storage.io",
            StoreError::Fenced { .. } => "storage.fenced",
            StoreError::Corrupt(_) => "storage.corrupt",
        }
    }
}

/// Durable storage of accounts, entries, idempotency answers and rated usage.
pub trait LedgerStore: Send + Sync + 'static {
    /// The account snapshot of a subscriber, if any.
    fn load_account(&self, subscriber: &SubscriberId) -> Result<Option<Account>, StoreError>;
    /// All entries of a subscriber, in order.
    fn entries(&self, subscriber: &SubscriberId) -> Result<Vec<Entry>, StoreError>;
    /// The answer stored for an idempotency key.
    fn answer(&self, subscriber: &SubscriberId, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The most recent rated usage records of a subscriber, newest first.
    fn recent_usage(&self, subscriber: &SubscriberId, limit: usize) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Makes all writes durable at once (one group commit), or none of a fenced writer's.
    fn commit(&self, writes: Vec<AccountWrite>) -> Result<(), StoreError>;
}
