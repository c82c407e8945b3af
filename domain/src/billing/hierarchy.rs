//! Accounts and corporate hierarchies of unlimited depth, and who pays for whom.
//!
//! Rules:
//! - an account is a **payer** when it is `self_paying` or a root (no parent); a payer gets one
//!   convergent invoice per period of its bill cycle;
//! - `paid_by_parent`: the account's charges go on the invoice of its parent's payer, so a head
//!   office whose children are paid by parent pays for its whole subtree, down to (and not
//!   including) the next self-paying account, which pays for itself and its own paid-by-parent
//!   children;
//! - `paid_by { account }` names an explicit **ancestor** whose payer pays (a child never pays
//!   for its parent: `hierarchy.payer_not_ancestor`);
//! - a root cannot be paid by parent (`hierarchy.root_paid_by_parent`), parents must exist
//!   (`hierarchy.unknown_parent`), the parent links form no cycle (`hierarchy.cycle`), and a
//!   paid-for account has its payer's currency (`hierarchy.currency_mismatch`: an invoice has one
//!   currency). A paid-for account's own bill cycle is not used: its payer's cycle governs.
//!
//! Every walk is iterative (explicit stacks, bounded by the number of accounts), so depth is
//! limited by memory only. Sibling order, and so invoice section order, is by account id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::error::BillingError;
use crate::ids::{AccountId, BillCycleId, CustomerId, DiscountId};
use crate::money::Currency;

/// Who pays an account's charges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Responsibility {
    /// The account gets its own invoice.
    SelfPaying,
    /// The parent's payer pays.
    PaidByParent,
    /// The payer of the named ancestor pays.
    PaidBy {
        /// An ancestor of the account.
        account: AccountId,
    },
}

/// A billing account: a node of a customer hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Account id.
    pub id: AccountId,
    /// Owning customer.
    pub customer: CustomerId,
    /// Parent account, if any.
    #[serde(default)]
    pub parent: Option<AccountId>,
    /// Currency of its charges and (when a payer) of its invoices.
    pub currency: Currency,
    /// Bill cycle (used when the account is a payer).
    pub bill_cycle: BillCycleId,
    /// Tax jurisdiction its charges are taxed in.
    pub tax_jurisdiction: SmolStr,
    /// Who pays.
    pub responsibility: Responsibility,
    /// Discounts attached to the account, applied in this order.
    #[serde(default)]
    pub discounts: Vec<DiscountId>,
}

impl Account {
    /// Whether the account gets its own invoice (self-paying, or a root).
    pub fn is_payer(&self) -> bool {
        self.responsibility == Responsibility::SelfPaying || self.parent.is_none()
    }
}

/// An account on a payer's invoice, with its depth below the payer (the payer is depth 0).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BilledAccount {
    /// Account.
    pub account: AccountId,
    /// Depth below the payer.
    pub depth: u32,
}

/// All accounts of a hierarchy (or of several), indexed by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forest {
    accounts: BTreeMap<AccountId, Account>,
}

/// Accounts in depth-first order with what the rules derive from the links.
struct Layout {
    /// Account indices (into `order`) in depth-first preorder.
    order: Vec<AccountId>,
    depth: Vec<u32>,
    /// Number of accounts in the subtree rooted at each position, itself included.
    size: Vec<usize>,
    /// Position of each account's payer.
    payer: Vec<usize>,
    position: BTreeMap<AccountId, usize>,
}

impl Forest {
    /// Indexes accounts; only duplicate ids are refused here (see [`Forest::validate`]).
    pub fn new(accounts: impl IntoIterator<Item = Account>) -> Result<Forest, BillingError> {
        let mut map = BTreeMap::new();
        for account in accounts {
            if let Some(old) = map.insert(account.id.clone(), account) {
                return Err(BillingError::DuplicateAccount(old.id));
            }
        }
        Ok(Forest { accounts: map })
    }

    /// An account by id.
    pub fn get(&self, id: &AccountId) -> Option<&Account> {
        self.accounts.get(id)
    }

    fn account(&self, id: &AccountId) -> Result<&Account, BillingError> {
        self.get(id)
            .ok_or_else(|| BillingError::UnknownAccount(id.clone()))
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether there is no account.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// All accounts, by id.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// Checks every rule of the module doc over the whole forest.
    pub fn validate(&self) -> Result<(), BillingError> {
        let layout = self.layout()?;
        for (at, id) in layout.order.iter().enumerate() {
            let payer_at = layout.payer[at];
            if payer_at == at {
                continue;
            }
            let account = self.account(id)?;
            let payer = self.account(&layout.order[payer_at])?;
            if account.currency != payer.currency {
                return Err(BillingError::HierarchyCurrencyMismatch {
                    account: account.id.clone(),
                    currency: account.currency,
                    payer: payer.id.clone(),
                    payer_currency: payer.currency,
                });
            }
        }
        Ok(())
    }

    /// Checks that adding or replacing `proposed` keeps the forest valid.
    pub fn validate_change(&self, proposed: &Account) -> Result<(), BillingError> {
        // A targeted cycle check first, so the error names the account being changed.
        let mut at = proposed.parent.clone();
        for _ in 0..=self.len() {
            let Some(id) = at else { break };
            if id == proposed.id {
                return Err(BillingError::Cycle(proposed.id.clone()));
            }
            let parent = self.get(&id).ok_or_else(|| BillingError::UnknownParent {
                account: proposed.id.clone(),
                parent: id.clone(),
            })?;
            at = parent.parent.clone();
        }
        self.with_change(proposed.clone()).validate()
    }

    /// A copy with `account` added or replaced (unvalidated: call [`Forest::validate_change`]).
    pub fn with_change(&self, account: Account) -> Forest {
        let mut accounts = self.accounts.clone();
        accounts.insert(account.id.clone(), account);
        Forest { accounts }
    }

    /// The account whose invoice carries `id`'s charges.
    pub fn payer_of(&self, id: &AccountId) -> Result<AccountId, BillingError> {
        let mut at = self.account(id)?;
        // Each step moves strictly up, so more steps than accounts means a cycle.
        for _ in 0..=self.len() {
            let next = match (&at.responsibility, &at.parent) {
                (Responsibility::SelfPaying, _) | (Responsibility::PaidByParent, None) => {
                    return Ok(at.id.clone());
                }
                (Responsibility::PaidByParent, Some(parent)) => {
                    self.get(parent)
                        .ok_or_else(|| BillingError::UnknownParent {
                            account: at.id.clone(),
                            parent: parent.clone(),
                        })?
                }
                (Responsibility::PaidBy { account }, _) => {
                    self.get(account)
                        .ok_or_else(|| BillingError::PayerNotAncestor {
                            account: at.id.clone(),
                            payer: account.clone(),
                        })?
                }
            };
            at = next;
        }
        Err(BillingError::Cycle(id.clone()))
    }

    /// The accounts on `payer`'s invoice, in depth-first order (payer first, siblings by id),
    /// with their depth below the payer.
    pub fn billed_subtree(&self, payer: &AccountId) -> Result<Vec<BilledAccount>, BillingError> {
        let layout = self.layout()?;
        let at = *layout
            .position
            .get(payer)
            .ok_or_else(|| BillingError::UnknownAccount(payer.clone()))?;
        if layout.payer[at] != at {
            return Err(BillingError::NotAPayer(payer.clone()));
        }
        Ok(layout.billed(at))
    }

    /// Every payer with the accounts on its invoice, computed in one pass.
    pub fn billing_plan(&self) -> Result<BTreeMap<AccountId, Vec<BilledAccount>>, BillingError> {
        let layout = self.layout()?;
        let mut plan = BTreeMap::new();
        for at in 0..layout.order.len() {
            if layout.payer[at] == at {
                plan.insert(layout.order[at].clone(), layout.billed(at));
            }
        }
        Ok(plan)
    }

    /// The payers billed on `cycle`, by id.
    pub fn payers_for_cycle(&self, cycle: &BillCycleId) -> Vec<AccountId> {
        self.accounts
            .values()
            .filter(|a| a.is_payer() && a.bill_cycle == *cycle)
            .map(|a| a.id.clone())
            .collect()
    }

    fn layout(&self) -> Result<Layout, BillingError> {
        let mut children: BTreeMap<&AccountId, Vec<&AccountId>> = BTreeMap::new();
        let mut roots = Vec::new();
        for account in self.accounts.values() {
            match &account.parent {
                None => roots.push(&account.id),
                Some(parent) if parent == &account.id => {
                    return Err(BillingError::Cycle(account.id.clone()));
                }
                Some(parent) if !self.accounts.contains_key(parent) => {
                    return Err(BillingError::UnknownParent {
                        account: account.id.clone(),
                        parent: parent.clone(),
                    });
                }
                Some(parent) => children.entry(parent).or_default().push(&account.id),
            }
        }
        let n = self.accounts.len();
        let mut order = Vec::with_capacity(n);
        let mut depth = Vec::with_capacity(n);
        let mut parent_at: Vec<Option<usize>> = Vec::with_capacity(n);
        let mut position = BTreeMap::new();
        // Stack of (account, depth, parent position); children pushed in reverse keep id order.
        let mut stack: Vec<(&AccountId, u32, Option<usize>)> =
            roots.iter().rev().map(|id| (*id, 0, None)).collect();
        while let Some((id, d, parent)) = stack.pop() {
            let at = order.len();
            position.insert(id.clone(), at);
            order.push(id.clone());
            depth.push(d);
            parent_at.push(parent);
            if let Some(kids) = children.get(id) {
                stack.extend(
                    kids.iter()
                        .rev()
                        .map(|kid| (*kid, d.saturating_add(1), Some(at))),
                );
            }
        }
        if order.len() < n {
            // Accounts not reachable from a root hang off a cycle.
            let lost = self.accounts.keys().find(|id| !position.contains_key(*id));
            return Err(BillingError::Cycle(
                lost.cloned().unwrap_or_else(|| AccountId::new("")),
            ));
        }
        let mut size = vec![1usize; n];
        for at in (0..n).rev() {
            if let Some(parent) = parent_at[at] {
                size[parent] += size[at];
            }
        }
        let mut payer = vec![0usize; n];
        for at in 0..n {
            let account = self.account(&order[at])?;
            payer[at] = match (&account.responsibility, parent_at[at]) {
                (Responsibility::SelfPaying, _) => at,
                (Responsibility::PaidByParent, None) => {
                    return Err(BillingError::RootPaidByParent(account.id.clone()));
                }
                (Responsibility::PaidBy { account: named }, None) => {
                    return Err(BillingError::PayerNotAncestor {
                        account: account.id.clone(),
                        payer: named.clone(),
                    });
                }
                (Responsibility::PaidByParent, Some(parent)) => payer[parent],
                (Responsibility::PaidBy { account: named }, Some(_)) => {
                    let ancestor = position
                        .get(named)
                        .copied()
                        .filter(|&x| x < at && at < x + size[x]);
                    match ancestor {
                        Some(x) => payer[x],
                        None => {
                            return Err(BillingError::PayerNotAncestor {
                                account: account.id.clone(),
                                payer: named.clone(),
                            });
                        }
                    }
                }
            };
        }
        Ok(Layout {
            order,
            depth,
            size,
            payer,
            position,
        })
    }
}

impl Layout {
    fn billed(&self, at: usize) -> Vec<BilledAccount> {
        // Everything a payer pays for lies in its subtree, a contiguous run of the preorder.
        (at..at + self.size[at])
            .filter(|&i| self.payer[i] == at)
            .map(|i| BilledAccount {
                account: self.order[i].clone(),
                depth: self.depth[i] - self.depth[at],
            })
            .collect()
    }
}
