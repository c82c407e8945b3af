//! Collection runs: one per idempotency key, as of a date, with one item per account that had an
//! overdue invoice when the run was created. Workers apply each account's due steps in any order
//! and any number of times (the queue redelivers); the cases make each step happen once.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::billing::run::RunState;
use crate::ids::AccountId;

/// A collection run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionRun {
    /// Id (`cr-<20 digits>`).
    pub id: SmolStr,
    /// The caller's idempotency key.
    pub key: SmolStr,
    /// The collection date: steps due on or before it are applied.
    pub as_of: Date,
    /// State (publishing, running, finished: as bill runs).
    pub state: RunState,
    /// Who started it (`scheduler` for the daily run).
    pub created_by: SmolStr,
    /// When.
    pub created_at: Timestamp,
    /// When every job was published.
    pub published_at: Option<Timestamp>,
    /// When the last item was resolved.
    pub finished_at: Option<Timestamp>,
    /// Accounts.
    pub total: u64,
    /// Accounts processed (whether or not a step was due).
    pub processed: u64,
    /// Accounts that failed (dead-lettered with a reason).
    pub failed: u64,
    /// Steps applied by this run, per action (`notify`, `penalty`, `suspend`, `disconnect`).
    pub steps: BTreeMap<SmolStr, u64>,
}

impl CollectionRun {
    /// Items resolved.
    pub fn done(&self) -> u64 {
        self.processed + self.failed
    }
}

/// What happened to one account of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CollectionItemState {
    /// Not processed yet.
    Pending,
    /// Processed: the steps applied (`<invoice>:<step>`), possibly none.
    Processed {
        /// Steps applied by this item.
        applied: Vec<SmolStr>,
    },
    /// Could not be processed.
    Failed {
        /// Reason code.
        reason: SmolStr,
        /// Message.
        message: String,
    },
}

/// One account of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionItem {
    /// Run.
    pub run: SmolStr,
    /// Account.
    pub account: AccountId,
    /// State.
    #[serde(flatten)]
    pub state: CollectionItemState,
    /// Last change.
    pub updated_at: Timestamp,
}

/// The id of the `seq`-th collection run (sorts by creation).
pub fn collection_run_id(seq: u64) -> SmolStr {
    smol_str::format_smolstr!("cr-{seq:020}")
}

/// Counts an item's resolution on its run (finishing the run when all are done). `steps` are
/// the actions applied by the item.
pub fn count_item(
    run: &mut CollectionRun,
    state: &CollectionItemState,
    steps: &[SmolStr],
    at: Timestamp,
) {
    match state {
        CollectionItemState::Pending => {}
        CollectionItemState::Processed { .. } => {
            run.processed += 1;
            for action in steps {
                *run.steps.entry(action.clone()).or_insert(0) += 1;
            }
        }
        CollectionItemState::Failed { .. } => run.failed += 1,
    }
    if run.done() >= run.total && run.state != RunState::Publishing {
        run.state = RunState::Finished;
        run.finished_at.get_or_insert(at);
    }
}
