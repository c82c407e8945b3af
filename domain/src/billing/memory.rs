//! An in-memory [`CustomerStore`] for unit tests and tools; not durable.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::customer::Customer;
use super::hierarchy::{Account, Forest};
use super::plan::plan;
use super::setup::BillingSetup;
use super::store::{
    AccountFilter, ChangeRecord, CustomerCommand, CustomerFilter, CustomerStore,
    CustomerStoreError, CustomerWrite, SubscriptionFilter, WriteContext,
};
use super::subscription::Subscription;
use crate::admin::{AuditId, AuditRecord};
use crate::ids::{AccountId, CustomerId, SubscriptionId};
use crate::ledger::StoreError;

#[derive(Default)]
struct State {
    customers: BTreeMap<CustomerId, Customer>,
    accounts: BTreeMap<AccountId, Account>,
    subscriptions: BTreeMap<SubscriptionId, Subscription>,
    setup: Option<BillingSetup>,
    history: BTreeMap<(CustomerId, AuditId), ChangeRecord>,
    audit: BTreeMap<AuditId, AuditRecord>,
}

/// Customer data in memory.
#[derive(Default)]
pub struct MemoryCustomerStore {
    state: Mutex<State>,
    /// Held across check and write, as the durable backends do.
    writes: Mutex<()>,
}

fn page<'a, K: Ord + 'a, V: Clone + 'a>(
    items: impl Iterator<Item = (&'a K, &'a V)>,
    after: Option<&K>,
    keep: impl Fn(&V) -> bool,
    limit: usize,
) -> Vec<V> {
    items
        .filter(|(k, _)| after.is_none_or(|a| *k > a))
        .map(|(_, v)| v)
        .filter(|v| keep(v))
        .take(limit)
        .cloned()
        .collect()
}

impl MemoryCustomerStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, StoreError> {
        let mut guard = self
            .state
            .lock()
            .map_err(|_| StoreError::Io("customer store lock poisoned".into()))?;
        Ok(f(&mut guard))
    }

    fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Audit records written so far (the node keeps them in the shared audit trail).
    pub fn audit_records(&self) -> Result<Vec<AuditRecord>, StoreError> {
        self.with(|s| s.audit.values().cloned().collect())
    }

    fn commit(&self, write: CustomerWrite) -> Result<(), StoreError> {
        self.with(|s| {
            for c in write.customers {
                s.customers.insert(c.id.clone(), c);
            }
            for a in write.accounts {
                s.accounts.insert(a.id.clone(), a);
            }
            for sub in write.subscriptions {
                s.subscriptions.insert(sub.id.clone(), sub);
            }
            if let Some(setup) = write.setup {
                s.setup = Some(setup);
            }
            for change in write.changes {
                s.audit.insert(change.id, change.audit());
                if let Some(customer) = &change.customer {
                    s.history.insert((customer.clone(), change.id), change);
                }
            }
        })
    }
}

impl CustomerStore for MemoryCustomerStore {
    fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        self.with(|s| s.customers.get(id).cloned())
    }

    fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.with(|s| s.accounts.get(id).cloned())
    }

    fn forest(&self) -> Result<Forest, StoreError> {
        let accounts = self.with(|s| s.accounts.values().cloned().collect::<Vec<_>>())?;
        Forest::new(accounts).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    fn subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        self.with(|s| s.subscriptions.get(id).cloned())
    }

    fn subscriptions_of(&self, account: &AccountId) -> Result<Vec<Subscription>, StoreError> {
        self.with(|s| {
            s.subscriptions
                .values()
                .filter(|sub| sub.account == *account)
                .cloned()
                .collect()
        })
    }

    fn setup(&self) -> Result<BillingSetup, StoreError> {
        self.with(|s| s.setup.clone().unwrap_or_default())
    }

    fn search_customers(
        &self,
        filter: &CustomerFilter,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Customer>, StoreError> {
        self.with(|s| page(s.customers.iter(), after, |c| filter.matches(c), limit))
    }

    fn search_accounts(
        &self,
        filter: &AccountFilter,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<Account>, StoreError> {
        self.with(|s| page(s.accounts.iter(), after, |a| filter.matches(a), limit))
    }

    fn search_subscriptions(
        &self,
        filter: &SubscriptionFilter,
        after: Option<&SubscriptionId>,
        limit: usize,
    ) -> Result<Vec<Subscription>, StoreError> {
        self.with(|s| page(s.subscriptions.iter(), after, |x| filter.matches(x), limit))
    }

    fn history(
        &self,
        customer: &CustomerId,
        after: Option<AuditId>,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        self.with(|s| {
            let start = after.map_or(AuditId(0), |a| AuditId(a.0.saturating_add(1)));
            s.history
                .range((customer.clone(), start)..=(customer.clone(), AuditId(u128::MAX)))
                .map(|(_, r)| r.clone())
                .take(limit)
                .collect()
        })
    }

    fn apply(
        &self,
        command: CustomerCommand,
        by: &WriteContext,
    ) -> Result<ChangeRecord, CustomerStoreError> {
        let _serialised = self.write_lock();
        let (write, entry) = plan(self, command, by)?;
        if !write.is_empty() {
            self.commit(write)?;
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_keeps_the_customer_contract() {
        let store = MemoryCustomerStore::new();
        super::super::contract::run(&store, &|| store.audit_records()).unwrap();
    }
}
