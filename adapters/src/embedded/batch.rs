//! [`WriteBatch`]: the unit of atomicity and of fencing.

use smol_str::SmolStr;

use super::error::StoreError;

/// Name of the internal table that keeps the durable ownership epoch of each shard.
pub const SHARD_EPOCHS_TABLE: &str = "shard_epochs";

/// One write of a batch, applied in the order it was added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Operation {
    /// Insert or overwrite `key` in `table`.
    Put {
        table: SmolStr,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Remove `key` from `table` (absent keys are fine).
    Delete { table: SmolStr, key: Vec<u8> },
    /// Raise the durable epoch of `shard` to `epoch` (never lowers it).
    SetEpoch { shard: u32, epoch: u64 },
    /// Add `deltas` element-wise to the counters stored at `key` (big-endian `i64`s; absent
    /// counters are zero), inside the transaction: concurrent batches never lose an increment.
    AddCounters {
        table: SmolStr,
        key: Vec<u8>,
        deltas: Vec<i64>,
    },
}

/// A precondition of a batch: the durable epoch of `shard` is not above `epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochCheck {
    pub(crate) shard: u32,
    pub(crate) epoch: u64,
}

/// An ordered list of writes on named tables, committed atomically: all of it or none of it.
///
/// Epoch checks ([`WriteBatch::expect_epoch`]) are evaluated against the state before the batch,
/// before any of its writes, wherever they were added; a batch that fails one applies nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub(crate) operations: Vec<Operation>,
    pub(crate) epoch_checks: Vec<EpochCheck>,
    /// The `(shard, epoch)` pairs of the batch's `SetEpoch` operations (to skip repeats).
    epochs_set: Vec<(u32, u64)>,
}

impl WriteBatch {
    /// An empty batch.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or overwrites `key` with `value` in `table`.
    pub fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> &mut Self {
        self.put_owned(table, key.to_vec(), value.to_vec())
    }

    /// Like [`WriteBatch::put`], taking ownership of the key and the value (no copy).
    pub fn put_owned(&mut self, table: &str, key: Vec<u8>, value: Vec<u8>) -> &mut Self {
        self.operations.push(Operation::Put {
            table: SmolStr::new(table),
            key,
            value,
        });
        self
    }

    /// Removes `key` from `table`; removing an absent key is not an error.
    pub fn delete(&mut self, table: &str, key: &[u8]) -> &mut Self {
        self.operations.push(Operation::Delete {
            table: SmolStr::new(table),
            key: key.to_vec(),
        });
        self
    }

    /// Adds `deltas` element-wise to the counters stored at `key` in `table` (a value of
    /// big-endian `i64`s, read back with [`decode_counters`]). The addition happens in the write
    /// transaction, so batches committed concurrently each add their own deltas.
    pub fn add_counters(&mut self, table: &str, key: &[u8], deltas: &[i64]) -> &mut Self {
        self.operations.push(Operation::AddCounters {
            table: SmolStr::new(table),
            key: key.to_vec(),
            deltas: deltas.to_vec(),
        });
        self
    }

    /// Refuses the whole batch with [`StoreError::Fenced`] if the durable epoch of `shard` is
    /// higher than `epoch` (a newer owner has taken the shard over).
    ///
    /// A check the batch already has is not added again (a batch of many accounts of one shard
    /// carries one check, not one per account).
    pub fn expect_epoch(&mut self, shard: u32, epoch: u64) -> &mut Self {
        let check = EpochCheck { shard, epoch };
        if !self.epoch_checks.contains(&check) {
            self.epoch_checks.push(check);
        }
        self
    }

    /// Raises the durable epoch of `shard` to `epoch`; a lower `epoch` leaves it unchanged.
    ///
    /// Raising to the same epoch twice in one batch is idempotent, so a repeat is not added.
    pub fn set_epoch(&mut self, shard: u32, epoch: u64) -> &mut Self {
        if !self.epochs_set.contains(&(shard, epoch)) {
            self.epochs_set.push((shard, epoch));
            self.operations.push(Operation::SetEpoch { shard, epoch });
        }
        self
    }

    /// Number of writes (epoch checks not counted).
    #[must_use]
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    /// True when the batch has neither writes nor epoch checks.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty() && self.epoch_checks.is_empty()
    }

    /// Refuses table names the caller may not use, before the batch reaches the writer, so that
    /// a malformed batch fails alone instead of failing its whole group.
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        for operation in &self.operations {
            match operation {
                Operation::Put { table, .. }
                | Operation::Delete { table, .. }
                | Operation::AddCounters { table, .. } => {
                    validate_table_name(table)?;
                }
                Operation::SetEpoch { .. } => {}
            }
        }
        Ok(())
    }
}

/// Decodes a counters value written by [`WriteBatch::add_counters`]: `None` if its length is
/// not a multiple of 8.
#[must_use]
pub fn decode_counters(value: &[u8]) -> Option<Vec<i64>> {
    if !value.len().is_multiple_of(8) {
        return None;
    }
    Some(
        value
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                i64::from_be_bytes(b)
            })
            .collect(),
    )
}

/// `stored + deltas`, element-wise, as a counters value (the longer of the two sets the length).
pub(crate) fn add_counters(stored: &[i64], deltas: &[i64]) -> Vec<u8> {
    let len = stored.len().max(deltas.len());
    let mut out = Vec::with_capacity(len * 8);
    for i in 0..len {
        let a = stored.get(i).copied().unwrap_or(0);
        let b = deltas.get(i).copied().unwrap_or(0);
        out.extend_from_slice(&a.saturating_add(b).to_be_bytes());
    }
    out
}

/// The longest table name the engine takes.
const TABLE_NAME_LEN_MAX: usize = 255;

/// A user table name is non-empty, at most 255 bytes and is not the internal epoch table.
pub(crate) fn validate_table_name(table: &str) -> Result<(), StoreError> {
    if table.is_empty() {
        return Err(StoreError::invalid("table name is empty"));
    }
    if table.len() > TABLE_NAME_LEN_MAX {
        return Err(StoreError::invalid(format!(
            "table name of {} bytes is longer than {TABLE_NAME_LEN_MAX}",
            table.len()
        )));
    }
    if table == SHARD_EPOCHS_TABLE {
        return Err(StoreError::invalid(format!(
            "table `{SHARD_EPOCHS_TABLE}` is reserved; use set_epoch/expect_epoch/shard_epoch"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_operations_in_order() {
        let mut batch = WriteBatch::new();
        batch
            .put("t", b"a", b"1")
            .delete("t", b"a")
            .set_epoch(3, 7)
            .expect_epoch(3, 6);
        assert_eq!(batch.len(), 3);
        assert_eq!(
            batch.operations[1],
            Operation::Delete {
                table: SmolStr::new("t"),
                key: b"a".to_vec()
            }
        );
        assert_eq!(batch.epoch_checks, vec![EpochCheck { shard: 3, epoch: 6 }]);
    }

    #[test]
    fn fence_only_batch_is_not_empty() {
        let mut batch = WriteBatch::new();
        assert!(batch.is_empty());
        batch.expect_epoch(1, 1);
        assert!(!batch.is_empty());
        assert_eq!(batch.len(), 0);
    }

    #[test]
    fn reserved_and_empty_table_names_are_refused() {
        let mut batch = WriteBatch::new();
        batch.put(SHARD_EPOCHS_TABLE, b"k", b"v");
        assert_eq!(
            batch.validate().map_err(|e| e.code()),
            Err("storage.invalid")
        );
        let mut batch = WriteBatch::new();
        batch.delete("", b"k");
        assert!(batch.validate().is_err());
        let mut batch = WriteBatch::new();
        batch.put("ledger", b"k", b"v");
        assert!(batch.validate().is_ok());
    }
}
