//! The contract every [`IngestStore`] must keep; run it against each backend.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use jiff::Timestamp;
use rust_decimal::Decimal;
use smol_str::SmolStr;

use super::{
    IngestStore, IngestWrite, OutboxRow, SourcePosition, SourceStats, StatsDelta, SuspenseFilter,
    SuspenseRecord, SuspenseState,
};
use crate::admin::AuditRecord;
use crate::ids::SubscriberId;
use crate::ledger::{
    Account, AccountWrite, Entry, EntryKind, Fence, LedgerStore, Mode, StoreError,
};
use crate::money::Currency;

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread (commit futures need no runtime).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn account_write(id: &str, fence: Fence, first_seq: u64, amount: i64, key: &str) -> AccountWrite {
    let mut account = Account::new(SubscriberId::new(id), Currency::EUR, Mode::Postpaid);
    let at = Timestamp::UNIX_EPOCH;
    let entry = Entry {
        key: SmolStr::new(key),
        at,
        kind: EntryKind::Charge,
        amount: Decimal::new(amount, 2),
        reserved: Decimal::ZERO,
        reference: SmolStr::new(key),
    };
    account.balance = Decimal::new(amount, 2);
    account.entry_count = first_seq + 1;
    AccountWrite {
        fence,
        account,
        entries: vec![entry],
        first_seq,
        at,
        answers: vec![(SmolStr::new(key), key.as_bytes().to_vec())],
        usage: Vec::new(),
        audit: Vec::new(),
        partner_inbox: Vec::new(),
    }
}

fn suspended(id: &str, source: &str, reason: &str, raw: &[u8]) -> SuspenseRecord {
    SuspenseRecord {
        id: id.into(),
        source: source.into(),
        reason: reason.into(),
        message: format!("{reason} for {id}"),
        raw: raw.to_vec(),
        format: "application/json".into(),
        received_at: Timestamp::UNIX_EPOCH,
        last_tried_at: Timestamp::UNIX_EPOCH,
        attempts: 1,
        cdr_id: None,
        subscriber: None,
        state: SuspenseState::Open,
    }
}

fn message(topic: &str, key: &str, payload: &str) -> OutboxRow {
    OutboxRow {
        topic: topic.into(),
        key: key.as_bytes().to_vec(),
        payload: payload.as_bytes().to_vec(),
    }
}

fn e(e: StoreError) -> String {
    e.to_string()
}

/// Runs the contract on `store`, whose account writes land in `ledger`; returns the first
/// broken promise. `audit` reads back every audit record the backend holds.
pub fn run(
    store: &dyn IngestStore,
    ledger: &dyn LedgerStore,
    audit: &dyn Fn() -> Result<Vec<AuditRecord>, String>,
) -> Result<(), String> {
    let fail = |what: &str| Err::<(), String>(what.to_string());
    if store.position("kafka:t", 0).map_err(e)?.is_some()
        || !store.stats().map_err(e)?.is_empty()
        || !store
            .suspense(&SuspenseFilter::default(), None, 10)
            .map_err(e)?
            .is_empty()
    {
        return fail("a fresh store has no positions, counters or suspense");
    }
    if !store.outbox(None, 10).map_err(e)?.is_empty() || store.outbox_len().map_err(e)? != 0 {
        return fail("a fresh store has an empty outbox");
    }
    let fence = Fence { shard: 3, epoch: 5 };
    // One write: a charge, two suspended records (one not UTF-8), a position, counters and an
    // audit record.
    let record = AuditRecord::new(
        Timestamp::UNIX_EPOCH,
        "contract",
        "suspense.recycle",
        "suspense",
        "r1",
        None,
        None,
    );
    let write = IngestWrite {
        accounts: vec![account_write("ingest-a", fence, 0, -120, "cdr:1")],
        suspense: vec![
            suspended("kafka:t/0/2", "kafka:t", "cdr.bad_encoding", &[0xff, 0xfe]),
            suspended("kafka:t/0/1", "kafka:t", "rating.unknown_subscriber", b"{}"),
        ],
        positions: vec![SourcePosition {
            source: "kafka:t".into(),
            partition: 0,
            next_offset: 3,
        }],
        stats: vec![(
            "kafka:t".into(),
            StatsDelta {
                ingested: 3,
                rated: 1,
                suspended: 2,
                ..StatsDelta::default()
            },
        )],
        audit: vec![record.clone()],
        outbox: vec![
            message("cdr.rated", "ingest-a", "rated 1"),
            message("cdr.suspense", "kafka:t/0/2", "suspended 2"),
            message("cdr.suspense", "kafka:t/0/1", "suspended 1"),
        ],
    };
    block_on(store.commit_ingest(write)).map_err(e)?;
    let first = store.outbox(None, 10).map_err(e)?;
    if first.iter().map(|o| o.row.clone()).collect::<Vec<_>>()
        != [
            message("cdr.rated", "ingest-a", "rated 1"),
            message("cdr.suspense", "kafka:t/0/2", "suspended 2"),
            message("cdr.suspense", "kafka:t/0/1", "suspended 1"),
        ]
        || !first.windows(2).all(|w| w[0].seq < w[1].seq)
        || store.outbox_len().map_err(e)? != 3
    {
        return Err(format!(
            "outbox rows are stored with the batch, in order: {first:?}"
        ));
    }
    let account = ledger
        .load_account(&SubscriberId::new("ingest-a"))
        .map_err(e)?
        .ok_or("the batch's account write is stored")?;
    if account.balance != Decimal::new(-120, 2) {
        return fail("the account write round-trips");
    }
    if store.position("kafka:t", 0).map_err(e)? != Some(3)
        || store.position("kafka:t", 1).map_err(e)?.is_some()
        || store.position("kafka:u", 0).map_err(e)?.is_some()
    {
        return fail("positions are kept per source and partition");
    }
    let expected = SourceStats {
        ingested: 3,
        rated: 1,
        suspended: 2,
        duplicates: 0,
        filtered: 0,
    };
    if store.stats().map_err(e)? != vec![(SmolStr::new("kafka:t"), expected)] {
        return fail("counters are stored per source");
    }
    let all = store
        .suspense(&SuspenseFilter::default(), None, 10)
        .map_err(e)?;
    if all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>() != ["kafka:t/0/1", "kafka:t/0/2"] {
        return fail("suspense is listed in id order");
    }
    if all[1].raw != [0xff, 0xfe] {
        return fail("raw bytes are kept exactly, even when not UTF-8");
    }
    if !audit()?.iter().any(|r| r.id == record.id) {
        return fail("audit records are stored with the write");
    }
    // Cursor paging and filters.
    let page = store
        .suspense(&SuspenseFilter::default(), Some("kafka:t/0/1"), 10)
        .map_err(e)?;
    if page.len() != 1 || page[0].id != "kafka:t/0/2" {
        return fail("the cursor resumes after the given id");
    }
    let by_reason = SuspenseFilter {
        reason: Some("rating.".into()),
        ..SuspenseFilter::default()
    };
    let found = store.suspense(&by_reason, None, 10).map_err(e)?;
    if found.len() != 1 || found[0].reason != "rating.unknown_subscriber" {
        return fail("a reason prefix filters");
    }
    if store
        .suspense(&SuspenseFilter::default(), None, 1)
        .map_err(e)?
        .len()
        != 1
    {
        return fail("the limit is kept");
    }
    if store.suspense_record("kafka:t/0/2").map_err(e)?.as_ref() != Some(&all[1])
        || store.suspense_record("nope").map_err(e)?.is_some()
    {
        return fail("one record by id");
    }
    // A recycle: the row is replaced, counters move from suspended to rated.
    let mut recycled = all[0].clone();
    recycled.state = SuspenseState::Recycled {
        at: Timestamp::UNIX_EPOCH,
        by: "care".into(),
        outcome: "rated".into(),
    };
    recycled.attempts = 2;
    let write = IngestWrite {
        accounts: vec![account_write("ingest-b", fence, 0, -30, "cdr:2")],
        suspense: vec![recycled.clone()],
        stats: vec![(
            "kafka:t".into(),
            StatsDelta {
                suspended: -1,
                rated: 1,
                ..StatsDelta::default()
            },
        )],
        outbox: vec![message("cdr.rated", "ingest-b", "rated 2")],
        ..IngestWrite::default()
    };
    block_on(store.commit_ingest(write)).map_err(e)?;
    let all_rows = store.outbox(None, 10).map_err(e)?;
    if all_rows.len() != 4
        || all_rows[..3] != first[..]
        || all_rows[3].row != message("cdr.rated", "ingest-b", "rated 2")
        || all_rows[3].seq <= first[2].seq
    {
        return Err(format!(
            "a later write's rows come after the earlier ones: {all_rows:?}"
        ));
    }
    let page = store.outbox(Some(first[0].seq), 2).map_err(e)?;
    if page[..] != all_rows[1..3] {
        return fail("outbox paging resumes after the given sequence number and keeps the limit");
    }
    let open = SuspenseFilter {
        open: Some(true),
        ..SuspenseFilter::default()
    };
    if store.suspense_record(&recycled.id).map_err(e)? != Some(recycled.clone())
        || store.suspense(&open, None, 10).map_err(e)?.len() != 1
    {
        return fail("writing a suspense id again replaces the record");
    }
    let stats = store.stats().map_err(e)?;
    if stats.len() != 1 || stats[0].1.rated != 2 || stats[0].1.suspended != 1 {
        return fail("counter changes add up, negative ones too");
    }
    if !stats[0].1.balanced() {
        return fail("counters stay balanced");
    }
    // A fenced write applies nothing of the batch: no position, no suspense, no counters.
    let stale = IngestWrite {
        accounts: vec![account_write(
            "ingest-c",
            Fence { shard: 3, epoch: 4 },
            0,
            -1,
            "cdr:3",
        )],
        suspense: vec![suspended("kafka:t/0/9", "kafka:t", "cdr.empty", b"")],
        positions: vec![SourcePosition {
            source: "kafka:t".into(),
            partition: 0,
            next_offset: 10,
        }],
        stats: vec![(
            "kafka:t".into(),
            StatsDelta {
                ingested: 7,
                ..StatsDelta::default()
            },
        )],
        audit: Vec::new(),
        outbox: vec![message("cdr.rated", "ingest-c", "fenced")],
    };
    match block_on(store.commit_ingest(stale)) {
        Err(StoreError::Fenced { .. }) => {}
        other => return Err(format!("a stale owner's batch is fenced, got {other:?}")),
    }
    if store.position("kafka:t", 0).map_err(e)? != Some(3)
        || store.suspense_record("kafka:t/0/9").map_err(e)?.is_some()
        || store.stats().map_err(e)? != stats
        || ledger
            .load_account(&SubscriberId::new("ingest-c"))
            .map_err(e)?
            .is_some()
    {
        return fail("a fenced batch writes nothing at all");
    }
    if store.outbox(None, 10).map_err(e)? != all_rows || store.outbox_len().map_err(e)? != 4 {
        return fail("a fenced batch adds no outbox rows");
    }
    // Delivered rows are removed; the others stay, in order.
    block_on(store.delete_outbox(&[all_rows[0].seq, all_rows[2].seq])).map_err(e)?;
    let left = store.outbox(None, 10).map_err(e)?;
    if left != [all_rows[1].clone(), all_rows[3].clone()] || store.outbox_len().map_err(e)? != 2 {
        return Err(format!("deleting removes exactly the given rows: {left:?}"));
    }
    // Concurrent commits never lose one another's counts.
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    for _ in 0..25 {
                        let w = IngestWrite {
                            stats: vec![(
                                "files:drop".into(),
                                StatsDelta {
                                    ingested: 2,
                                    rated: 1,
                                    filtered: 1,
                                    ..StatsDelta::default()
                                },
                            )],
                            outbox: vec![message("cdr.rated", "files", "concurrent")],
                            ..IngestWrite::default()
                        };
                        block_on(store.commit_ingest(w)).map_err(e)?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "a committing thread panicked")??;
        }
        Ok::<(), String>(())
    })?;
    let files = store
        .stats()
        .map_err(e)?
        .into_iter()
        .find(|(s, _)| s == "files:drop")
        .map(|(_, s)| s)
        .ok_or("counters of a second source")?;
    if files.ingested != 400 || files.rated != 200 || files.filtered != 200 || !files.balanced() {
        return Err(format!("200 concurrent commits add exactly: {files:?}"));
    }
    let rows = store.outbox(None, 1_000).map_err(e)?;
    let mut seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    seqs.dedup();
    if rows.len() != 202
        || seqs.len() != 202
        || !rows.windows(2).all(|w| w[0].seq < w[1].seq)
        || rows[..2] != left[..]
        || store.outbox_len().map_err(e)? != 202
    {
        return Err(format!(
            "200 concurrent commits add 200 rows with distinct numbers after the stored ones \
             ({} rows)",
            rows.len()
        ));
    }
    // Emptied, then written to again: numbering goes on, nothing old comes back.
    block_on(store.delete_outbox(&seqs)).map_err(e)?;
    if !store.outbox(None, 10).map_err(e)?.is_empty() || store.outbox_len().map_err(e)? != 0 {
        return fail("deleting every row empties the outbox");
    }
    let w = IngestWrite {
        outbox: vec![message("cdr.rated", "after", "after")],
        ..IngestWrite::default()
    };
    block_on(store.commit_ingest(w)).map_err(e)?;
    let after = store.outbox(None, 10).map_err(e)?;
    if after.len() != 1 || after[0].row != message("cdr.rated", "after", "after") {
        return Err(format!("a write to an emptied outbox is kept: {after:?}"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use crate::ledger::MemoryLedgerStore;
    use crate::mediation::MemoryIngestStore;

    #[test]
    fn memory_store_keeps_the_contract() {
        let ledger = Arc::new(MemoryLedgerStore::new());
        let store = MemoryIngestStore::new(ledger.clone());
        super::run(&store, ledger.as_ref(), &|| Ok(store.audit_records())).unwrap();
    }
}
