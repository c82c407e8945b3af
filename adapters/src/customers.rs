//! The customer data contract ([`CustomerStore`]) on the embedded store.
//!
//! Tables (values are JSON unless noted):
//! - `customers`: customer id -> customer;
//! - `billing_accounts`: account id -> account (the ledger's balance accounts live in
//!   `accounts`);
//! - `subscriptions`: subscription id -> subscription;
//! - `subscriptions_by_account`: account id, a zero byte, subscription id -> empty (an index:
//!   bill-run workers read one account's subscriptions without a scan);
//! - `billing_setup`: `current` -> the setup document;
//! - `customer_history`: customer id, a zero byte, [`AuditId::key`] -> history entry;
//! - `audit`: the shared audit trail (see `admin.rs`).
//!
//! A command is planned (checked against the current state by the domain's `plan`) and
//! committed as one [`WriteBatch`] holding the new state, the history entry and the audit
//! record, under one process-wide lock so that no other customer write slips between the check
//! and the commit. The store is held by one process, so the lock serialises every writer.

use std::sync::{Arc, Mutex, PoisonError};

use tollgate_domain::admin::AuditId;
use tollgate_domain::billing::plan::plan;
use tollgate_domain::billing::{
    Account, AccountFilter, BillingSetup, ChangeRecord, Customer, CustomerCommand, CustomerFilter,
    CustomerStore, CustomerStoreError, CustomerWrite, Forest, Subscription, SubscriptionFilter,
    WriteContext,
};
use tollgate_domain::ids::{AccountId, CustomerId, SubscriptionId};
use tollgate_domain::ledger::StoreError;

use crate::admin::put_audit;
use crate::embedded::{EmbeddedStore, KeyValue, WriteBatch};
use crate::ledger::convert;

const CUSTOMERS: &str = "customers";
const ACCOUNTS: &str = "billing_accounts";
const SUBSCRIPTIONS: &str = "subscriptions";
const BY_ACCOUNT: &str = "subscriptions_by_account";
const SETUP: &str = "billing_setup";
const SETUP_KEY: &[u8] = b"current";
const HISTORY: &str = "customer_history";
/// Rows read per scan.
const CHUNK: usize = 1_000;

/// Serialises check-then-commit of customer writes in this process.
static COMMIT_LOCK: Mutex<()> = Mutex::new(());

/// Customer data on the embedded store; shares the store (one file, one writer thread)
/// with the ledger and the admin data.
pub struct EmbeddedCustomerStore {
    store: Arc<EmbeddedStore>,
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// `first`, a zero byte, `second`: ids never contain a zero byte in practice, and the zero
/// sorts before every other byte, so one owner's rows are one contiguous prefix.
fn pair_key(first: &str, second: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(first.len() + 1 + second.len());
    key.extend_from_slice(first.as_bytes());
    key.push(0);
    key.extend_from_slice(second);
    key
}

impl EmbeddedCustomerStore {
    /// Customer data on `store` (typically the one the ledger uses).
    pub fn new(store: Arc<EmbeddedStore>) -> Self {
        EmbeddedCustomerStore { store }
    }

    fn one<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.store
            .get(table, key)
            .map_err(convert)?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Rows of `table` after `after` in key order, decoded, those passing `keep`, at most
    /// `limit`; reads in chunks.
    fn scan<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        after: Option<&[u8]>,
        keep: impl Fn(&T) -> bool,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let mut found = Vec::new();
        let mut cursor = after.map(<[u8]>::to_vec);
        while found.len() < limit {
            let rows = self
                .store
                .scan_after(table, cursor.as_deref(), CHUNK)
                .map_err(convert)?;
            for (key, value) in &rows {
                cursor = Some(key.clone());
                let item: T = decode(value)?;
                if keep(&item) {
                    found.push(item);
                    if found.len() >= limit {
                        break;
                    }
                }
            }
            if rows.len() < CHUNK {
                break;
            }
        }
        Ok(found)
    }

    /// Keys of `table` starting with `prefix` and greater than `after` (a full key), at most
    /// `limit`, with their values.
    fn prefixed(
        &self,
        table: &str,
        prefix: &[u8],
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let mut found = Vec::new();
        // Start just before the prefix: the largest key below it is unknown, so scan from the
        // prefix itself with `scan_prefix` first, then continue with `scan_after`.
        let mut cursor = after;
        loop {
            let rows = match &cursor {
                None => self.store.scan_prefix(table, prefix, CHUNK),
                Some(last) => self.store.scan_after(table, Some(last), CHUNK),
            }
            .map_err(convert)?;
            let full = rows.len() == CHUNK;
            for (key, value) in rows {
                if !key.starts_with(prefix) {
                    return Ok(found);
                }
                cursor = Some(key.clone());
                found.push((key, value));
                if found.len() >= limit {
                    return Ok(found);
                }
            }
            if !full {
                return Ok(found);
            }
        }
    }

    fn batch(write: &CustomerWrite) -> Result<WriteBatch, StoreError> {
        let mut batch = WriteBatch::new();
        for customer in &write.customers {
            batch.put(
                CUSTOMERS,
                customer.id.as_str().as_bytes(),
                &encode(customer)?,
            );
        }
        for account in &write.accounts {
            batch.put(ACCOUNTS, account.id.as_str().as_bytes(), &encode(account)?);
        }
        for subscription in &write.subscriptions {
            batch.put(
                SUBSCRIPTIONS,
                subscription.id.as_str().as_bytes(),
                &encode(subscription)?,
            );
            // The planner never moves a subscription to another account, so the index entry
            // written at creation stays right; rewriting it is idempotent.
            batch.put(
                BY_ACCOUNT,
                &pair_key(
                    subscription.account.as_str(),
                    subscription.id.as_str().as_bytes(),
                ),
                &[],
            );
        }
        if let Some(setup) = &write.setup {
            batch.put(SETUP, SETUP_KEY, &encode(setup)?);
        }
        for change in &write.changes {
            put_audit(&mut batch, &change.audit())?;
            if let Some(customer) = &change.customer {
                batch.put(
                    HISTORY,
                    &pair_key(customer.as_str(), &change.id.key()),
                    &encode(change)?,
                );
            }
        }
        Ok(batch)
    }
}

impl CustomerStore for EmbeddedCustomerStore {
    fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        self.one(CUSTOMERS, id.as_str().as_bytes())
    }

    fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.one(ACCOUNTS, id.as_str().as_bytes())
    }

    fn forest(&self) -> Result<Forest, StoreError> {
        let accounts: Vec<Account> = self.scan(ACCOUNTS, None, |_| true, usize::MAX)?;
        Forest::new(accounts).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    fn subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        self.one(SUBSCRIPTIONS, id.as_str().as_bytes())
    }

    fn subscriptions_of(&self, account: &AccountId) -> Result<Vec<Subscription>, StoreError> {
        let prefix = pair_key(account.as_str(), &[]);
        let mut out = Vec::new();
        for (key, _) in self.prefixed(BY_ACCOUNT, &prefix, None, usize::MAX)? {
            let id = key.get(prefix.len()..).unwrap_or_default();
            match self.one::<Subscription>(SUBSCRIPTIONS, id)? {
                Some(subscription) if subscription.account == *account => out.push(subscription),
                _ => {}
            }
        }
        Ok(out)
    }

    fn setup(&self) -> Result<BillingSetup, StoreError> {
        Ok(self.one(SETUP, SETUP_KEY)?.unwrap_or_default())
    }

    fn search_customers(
        &self,
        filter: &CustomerFilter,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Customer>, StoreError> {
        let after = after.map(|a| a.as_str().as_bytes());
        self.scan(CUSTOMERS, after, |c| filter.matches(c), limit)
    }

    fn search_accounts(
        &self,
        filter: &AccountFilter,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<Account>, StoreError> {
        let after = after.map(|a| a.as_str().as_bytes());
        self.scan(ACCOUNTS, after, |a| filter.matches(a), limit)
    }

    fn search_subscriptions(
        &self,
        filter: &SubscriptionFilter,
        after: Option<&SubscriptionId>,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError> {
        if let (Some(account), None) = (&filter.account, after) {
            // The index answers the common "subscriptions of an account" search.
            return Ok(self
                .subscriptions_of(account)?
                .into_iter()
                .filter(|s| filter.matches(s))
                .take(limit)
                .collect());
        }
        let after = after.map(|a| a.as_str().as_bytes());
        self.scan(SUBSCRIPTIONS, after, |s| filter.matches(s), limit)
    }

    fn history(
        &self,
        customer: &CustomerId,
        after: Option<AuditId>,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let prefix = pair_key(customer.as_str(), &[]);
        let after = after.map(|id| pair_key(customer.as_str(), &id.key()));
        self.prefixed(HISTORY, &prefix, after, limit)?
            .iter()
            .map(|(_, value)| decode(value))
            .collect()
    }

    fn apply(
        &self,
        command: CustomerCommand,
        by: &WriteContext,
    ) -> Result<ChangeRecord, CustomerStoreError> {
        let _serialised = COMMIT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let (write, entry) = plan(self, command, by)?;
        if !write.is_empty() {
            let batch = Self::batch(&write)?;
            self.store.commit(batch).map_err(convert)?;
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::admin::EmbeddedAdminStore;
    use crate::embedded::StoreConfig;
    use tollgate_domain::admin::{AdminStore, AuditFilter};
    use tollgate_domain::billing::contract;

    fn open(dir: &std::path::Path) -> Arc<EmbeddedStore> {
        Arc::new(EmbeddedStore::open(StoreConfig::new(dir.join("tollgate.redb"))).unwrap())
    }

    #[test]
    fn embedded_store_keeps_the_customer_contract() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let customers = EmbeddedCustomerStore::new(engine.clone());
        let admin = EmbeddedAdminStore::new(engine);
        contract::run(&customers, &|| {
            admin.audit(&AuditFilter::default(), None, usize::MAX)
        })
        .unwrap();
    }

    #[test]
    fn customer_data_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (forest, setup, history) = {
            let engine = open(dir.path());
            let customers = EmbeddedCustomerStore::new(engine.clone());
            let admin = EmbeddedAdminStore::new(engine);
            contract::run(&customers, &|| {
                admin.audit(&AuditFilter::default(), None, usize::MAX)
            })
            .unwrap();
            (
                customers.forest().unwrap(),
                customers.setup().unwrap(),
                customers
                    .history(&CustomerId::new("acme"), None, 100)
                    .unwrap(),
            )
        };
        let reopened = EmbeddedCustomerStore::new(open(dir.path()));
        assert_eq!(reopened.forest().unwrap(), forest);
        assert_eq!(reopened.setup().unwrap(), setup);
        assert_eq!(
            reopened
                .history(&CustomerId::new("acme"), None, 100)
                .unwrap(),
            history
        );
        assert!(!history.is_empty() && forest.len() == 6 && setup.version == 3);
        assert_eq!(
            reopened
                .subscriptions_of(&AccountId::new("l1"))
                .unwrap()
                .len(),
            2
        );
    }
}
