//! The storage contract of the ledger. Implementations: the embedded store (default, in
//! `tollgate-adapters`), ScyllaDB later, and an in-memory one for unit tests. Every
//! implementation must pass the same contract tests.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::{Account, Entry};
use crate::admin::AuditRecord;
use crate::ids::{PartnerId, SubscriberId};

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
    /// Idempotency keys and the answers given.
    pub answers: Vec<(SmolStr, Vec<u8>)>,
    /// When the answers were given: they are kept for the dedupe horizon after it.
    pub at: jiff::Timestamp,
    /// Rated usage records to keep for queries (`cdr id`, serialized rating).
    pub usage: Vec<(SmolStr, Vec<u8>)>,
    /// Audit records of an admin mutation made through an actor (e.g. a top-up), written in the
    /// same durable transaction as the change; empty for usage and sessions.
    pub audit: Vec<AuditRecord>,
    /// Rated records that partners share, put into each partner's inbox in the same durable
    /// write as the charge (a transactional outbox: the partner actor drains it, so a crash
    /// between the charge and the partner's position loses nothing).
    pub partner_inbox: Vec<PartnerInboxRow>,
}

/// One rated record in a partner's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerInboxRow {
    /// Partner.
    pub partner: PartnerId,
    /// Item key, unique per partner (the CDR id; a rerated charge adds its job).
    pub key: SmolStr,
    /// The record (`crate::partner::inbox::InboxRecord`, JSON).
    pub record: Vec<u8>,
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
    fn recent_usage(
        &self,
        subscriber: &SubscriberId,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Makes all writes durable at once (one group commit), or none of a fenced writer's.
    fn commit(&self, writes: Vec<AccountWrite>) -> Result<(), StoreError>;

    /// Forgets idempotency answers given before `before` (the dedupe horizon); returns how many.
    fn purge_answers(&self, before: jiff::Timestamp) -> Result<u64, StoreError>;

    /// A partner's inbox rows in key order after `after`, at most `limit`.
    fn partner_inbox(
        &self,
        partner: &PartnerId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(SmolStr, Vec<u8>)>, StoreError>;

    /// Removes rows from a partner's inbox (those its position has counted); unknown keys are
    /// ignored.
    fn ack_partner_inbox(&self, partner: &PartnerId, keys: &[SmolStr]) -> Result<(), StoreError>;

    /// The same as [`LedgerStore::commit`], completing when durable without blocking the
    /// caller's thread (an actor awaits it). The default commits on the caller's thread.
    fn commit_async(&self, writes: Vec<AccountWrite>) -> CommitFuture {
        Box::pin(std::future::ready(self.commit(writes)))
    }
}

/// A commit in flight.
pub type CommitFuture = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;

/// The contract every [`LedgerStore`] must keep; run it against each backend.
pub mod contract {
    use jiff::Timestamp;
    use rust_decimal::Decimal;
    use smol_str::SmolStr;

    use super::{AccountWrite, Fence, LedgerStore, PartnerInboxRow, StoreError};
    use crate::admin::AuditRecord;
    use crate::ids::{PartnerId, SubscriberId};
    use crate::ledger::{Account, Entry, EntryKind, Mode};
    use crate::money::Currency;

    fn write(id: &str, fence: Fence, first_seq: u64, amounts: &[i64], key: &str) -> AccountWrite {
        let mut account = Account::new(SubscriberId::new(id), Currency::EUR, Mode::Postpaid);
        let at = Timestamp::UNIX_EPOCH;
        let entries: Vec<Entry> = amounts
            .iter()
            .enumerate()
            .map(|(i, a)| Entry {
                key: smol_str::format_smolstr!("{key}:{i}"),
                at,
                kind: EntryKind::Charge,
                amount: Decimal::new(*a, 2),
                reserved: Decimal::ZERO,
                reference: SmolStr::new(key),
            })
            .collect();
        account.balance = entries.iter().map(|e| e.amount).sum();
        account.entry_count = first_seq + entries.len() as u64;
        AccountWrite {
            fence,
            account,
            entries,
            first_seq,
            at: Timestamp::from_second(1_000 + first_seq as i64).unwrap_or(Timestamp::UNIX_EPOCH),
            answers: vec![(SmolStr::new(key), key.as_bytes().to_vec())],
            usage: vec![(SmolStr::new(key), format!("usage-{key}").into_bytes())],
            audit: Vec::new(),
            partner_inbox: vec![PartnerInboxRow {
                partner: PartnerId::new(format!("partner-of-{id}")),
                key: SmolStr::new(key),
                record: format!("share-{key}").into_bytes(),
            }],
        }
    }

    /// A write carrying the audit record of a top-up (the admin mutation made through an actor).
    fn audited(mut write: AccountWrite, request_id: &str) -> (AccountWrite, AuditRecord) {
        let record = AuditRecord::new(
            write.at,
            "contract",
            "balance.top_up",
            format!("subscriber/{}", write.account.subscriber.as_str()),
            request_id,
            None,
            Some(serde_json::json!({ "balance": write.account.balance.to_string() })),
        );
        write.audit.push(record.clone());
        (write, record)
    }

    /// Runs the contract; returns the first broken promise.
    pub fn run(store: &dyn LedgerStore) -> Result<(), String> {
        run_checked(store, None)
    }

    /// Runs the contract and also checks, through `read_audit` (every audit record the backend
    /// holds), that a write's audit records are stored with it and a fenced write's are not.
    pub fn run_with_audit(
        store: &dyn LedgerStore,
        read_audit: &dyn Fn() -> Result<Vec<AuditRecord>, String>,
    ) -> Result<(), String> {
        run_checked(store, Some(read_audit))
    }

    /// Partner inbox rows are written with the charge, read per partner in key order with
    /// paging, and removed once acknowledged; a fenced write put none.
    fn check_partner_inbox(store: &dyn LedgerStore) -> Result<(), String> {
        let e = |e: StoreError| e.to_string();
        let of_a = PartnerId::new("partner-of-contract-a");
        let of_ab = PartnerId::new("partner-of-contract-ab");
        let keys = |rows: &[(SmolStr, Vec<u8>)]| {
            rows.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>()
        };
        let all = store.partner_inbox(&of_a, None, 10).map_err(e)?;
        if keys(&all) != ["k1", "k3"] || all[0].1 != b"share-k1" {
            return Err(format!(
                "the inbox of a partner holds k1 and k3 (k4 was fenced), got {:?}",
                keys(&all)
            ));
        }
        if keys(&store.partner_inbox(&of_ab, None, 10).map_err(e)?) != ["k2"] {
            return Err("inboxes are kept per partner, not mixed by prefix".into());
        }
        if keys(&store.partner_inbox(&of_a, Some("k1"), 10).map_err(e)?) != ["k3"]
            || keys(&store.partner_inbox(&of_a, None, 1).map_err(e)?) != ["k1"]
        {
            return Err("the inbox pages by key".into());
        }
        store
            .ack_partner_inbox(&of_a, &[SmolStr::new("k1"), SmolStr::new("unknown")])
            .map_err(e)?;
        if keys(&store.partner_inbox(&of_a, None, 10).map_err(e)?) != ["k3"]
            || keys(&store.partner_inbox(&of_ab, None, 10).map_err(e)?) != ["k2"]
        {
            return Err("an acknowledged row leaves its partner's inbox, and only it".into());
        }
        Ok(())
    }

    fn run_checked(
        store: &dyn LedgerStore,
        read_audit: Option<&dyn Fn() -> Result<Vec<AuditRecord>, String>>,
    ) -> Result<(), String> {
        let fail = |what: &str| Err::<(), String>(what.to_string());
        let a = SubscriberId::new("contract-a");
        let b = SubscriberId::new("contract-ab");
        let fence = Fence { shard: 7, epoch: 3 };
        if store.load_account(&a).map_err(|e| e.to_string())?.is_some() {
            return fail("a fresh store has no account");
        }
        // Two subscribers in one group commit, one of whose ids prefixes the other's; each
        // write carries an audit record.
        let (first_a, audit_a) = audited(write("contract-a", fence, 0, &[-100, -50], "k1"), "r1");
        let (first_b, audit_b) = audited(write("contract-ab", fence, 0, &[-7], "k2"), "r2");
        store
            .commit(vec![first_a, first_b])
            .map_err(|e| e.to_string())?;
        let account = store
            .load_account(&a)
            .map_err(|e| e.to_string())?
            .ok_or("account written")?;
        if account.balance != Decimal::new(-150, 2) {
            return fail("account snapshot round-trips");
        }
        let entries = store.entries(&a).map_err(|e| e.to_string())?;
        if entries.len() != 2 || store.entries(&b).map_err(|e| e.to_string())?.len() != 1 {
            return fail("entries are kept per subscriber, not mixed by prefix");
        }
        if store
            .answer(&a, "k1")
            .map_err(|e| e.to_string())?
            .as_deref()
            != Some(b"k1".as_slice())
            || store.answer(&a, "k2").map_err(|e| e.to_string())?.is_some()
        {
            return fail("answers are kept per subscriber and key");
        }
        // Appends keep order; recent usage is newest first.
        let mut second = write("contract-a", fence, 2, &[-25], "k3");
        second.account.balance = Decimal::new(-175, 2);
        store.commit(vec![second]).map_err(|e| e.to_string())?;
        let entries = store.entries(&a).map_err(|e| e.to_string())?;
        if entries.iter().map(|e| e.amount).collect::<Vec<_>>()
            != vec![
                Decimal::new(-100, 2),
                Decimal::new(-50, 2),
                Decimal::new(-25, 2),
            ]
        {
            return fail("entries are returned in sequence order");
        }
        let usage = store.recent_usage(&a, 10).map_err(|e| e.to_string())?;
        if usage.first().map(Vec::as_slice) != Some(b"usage-k3".as_slice()) || usage.len() != 2 {
            return fail("recent usage is newest first");
        }
        // A stale epoch is fenced and writes nothing.
        let (stale, audit_stale) = audited(
            write("contract-a", Fence { shard: 7, epoch: 2 }, 3, &[-999], "k4"),
            "r4",
        );
        match store.commit(vec![stale]) {
            Err(StoreError::Fenced {
                shard: 7,
                stored: 3,
                given: 2,
            }) => {}
            other => return Err(format!("a stale epoch must be fenced, got {other:?}")),
        }
        if store.answer(&a, "k4").map_err(|e| e.to_string())?.is_some()
            || store.entries(&a).map_err(|e| e.to_string())?.len() != 3
        {
            return fail("a fenced write leaves nothing behind");
        }
        check_partner_inbox(store)?;
        // Answers older than the horizon are forgotten, newer ones kept: k1 and k2 were given
        // at 1000 s, k3 at 1002 s.
        let purged = store
            .purge_answers(Timestamp::from_second(1_001).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        if purged != 2 {
            return Err(format!(
                "purge before 1001 s removes the two answers given at 1000 s, removed {purged}"
            ));
        }
        if store.answer(&a, "k1").map_err(|e| e.to_string())?.is_some()
            || store.answer(&a, "k3").map_err(|e| e.to_string())?.is_none()
        {
            return fail("purge removes exactly the answers older than the horizon");
        }
        // A newer epoch takes over.
        let (takeover, audit_takeover) = audited(
            write("contract-a", Fence { shard: 7, epoch: 4 }, 3, &[-1], "k5"),
            "r5",
        );
        store.commit(vec![takeover]).map_err(|e| e.to_string())?;
        if let Some(read_audit) = read_audit {
            let mut stored = read_audit()?;
            stored.sort_by_key(|r| r.id);
            let mut expected = vec![audit_a, audit_b, audit_takeover];
            expected.sort_by_key(|r| r.id);
            if stored.iter().any(|r| r.id == audit_stale.id) {
                return fail("a fenced write's audit records are not stored");
            }
            if stored != expected {
                return Err(format!(
                    "every committed write's audit records are stored with it: expected {expected:?}, got {stored:?}"
                ));
            }
        }
        Ok(())
    }
}
