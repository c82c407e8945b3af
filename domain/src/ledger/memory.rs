//! An in-memory [`LedgerStore`], for unit tests of the layers above. Not durable: the node
//! never uses it.

use std::collections::{BTreeMap, HashMap};

use smol_str::SmolStr;
use std::sync::Mutex;

use super::{Account, AccountWrite, Entry, LedgerStore, StoreError};
use crate::admin::AuditRecord;
use crate::ids::{PartnerId, SubscriberId};

#[derive(Default)]
struct Data {
    accounts: HashMap<SubscriberId, Account>,
    entries: HashMap<SubscriberId, Vec<Entry>>,
    answers: HashMap<(SubscriberId, String), (jiff::Timestamp, Vec<u8>)>,
    usage: HashMap<SubscriberId, Vec<Vec<u8>>>,
    audit: Vec<AuditRecord>,
    inbox: BTreeMap<(PartnerId, SmolStr), Vec<u8>>,
    epochs: HashMap<u32, u64>,
    commits: u64,
}

/// In-memory ledger storage with the same fencing rule as the durable stores.
#[derive(Default)]
pub struct MemoryLedgerStore {
    data: Mutex<Data>,
}

impl MemoryLedgerStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of commits so far.
    pub fn commits(&self) -> u64 {
        self.data.lock().map(|d| d.commits).unwrap_or(0)
    }

    /// Every audit record committed with an account write, in commit order.
    pub fn audit_records(&self) -> Vec<AuditRecord> {
        self.data
            .lock()
            .map(|d| d.audit.clone())
            .unwrap_or_default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Data>, StoreError> {
        self.data
            .lock()
            .map_err(|_| StoreError::Io("store lock poisoned".into()))
    }
}

impl LedgerStore for MemoryLedgerStore {
    fn purge_answers(&self, before: jiff::Timestamp) -> Result<u64, StoreError> {
        let mut data = self.lock()?;
        let len = data.answers.len();
        data.answers.retain(|_, (at, _)| *at >= before);
        Ok((len - data.answers.len()) as u64)
    }

    fn load_account(&self, subscriber: &SubscriberId) -> Result<Option<Account>, StoreError> {
        Ok(self.lock()?.accounts.get(subscriber).cloned())
    }

    fn entries(&self, subscriber: &SubscriberId) -> Result<Vec<Entry>, StoreError> {
        Ok(self
            .lock()?
            .entries
            .get(subscriber)
            .cloned()
            .unwrap_or_default())
    }

    fn answer(&self, subscriber: &SubscriberId, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .lock()?
            .answers
            .get(&(subscriber.clone(), key.to_string()))
            .map(|(_, answer)| answer.clone()))
    }

    fn recent_usage(
        &self,
        subscriber: &SubscriberId,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let data = self.lock()?;
        Ok(data
            .usage
            .get(subscriber)
            .map(|u| u.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    fn partner_inbox(
        &self,
        partner: &PartnerId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(SmolStr, Vec<u8>)>, StoreError> {
        let data = self.lock()?;
        Ok(data
            .inbox
            .range((partner.clone(), SmolStr::default())..)
            .take_while(|((p, _), _)| p == partner)
            .filter(|((_, k), _)| after.is_none_or(|a| k.as_str() > a))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }

    fn ack_partner_inbox(&self, partner: &PartnerId, keys: &[SmolStr]) -> Result<(), StoreError> {
        let mut data = self.lock()?;
        for key in keys {
            data.inbox.remove(&(partner.clone(), key.clone()));
        }
        Ok(())
    }

    fn commit(&self, writes: Vec<AccountWrite>) -> Result<(), StoreError> {
        let mut data = self.lock()?;
        for w in &writes {
            let stored = data.epochs.get(&w.fence.shard).copied().unwrap_or(0);
            if stored > w.fence.epoch {
                return Err(StoreError::Fenced {
                    shard: w.fence.shard,
                    stored,
                    given: w.fence.epoch,
                });
            }
        }
        data.commits += 1;
        for w in writes {
            let id = w.account.subscriber.clone();
            data.epochs.insert(w.fence.shard, w.fence.epoch);
            data.entries
                .entry(id.clone())
                .or_default()
                .extend(w.entries);
            for (key, answer) in w.answers {
                data.answers
                    .insert((id.clone(), key.to_string()), (w.at, answer));
            }
            data.usage
                .entry(id.clone())
                .or_default()
                .extend(w.usage.into_iter().map(|(_, u)| u));
            data.audit.extend(w.audit);
            for row in w.partner_inbox {
                data.inbox.insert((row.partner, row.key), row.record);
            }
            data.accounts.insert(id, w.account);
        }
        Ok(())
    }
}
