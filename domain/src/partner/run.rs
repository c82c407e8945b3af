//! Settlement runs: one per idempotency key, for one settlement period, with one item per
//! partner to settle when the run was created. Workers settle each partner in any order and any
//! number of times (the queue redelivers); the pending-item check makes each settlement happen
//! once. Mirrors [`crate::finance::collection`].

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::billing::Period;
use crate::billing::run::RunState;
use crate::ids::PartnerId;

/// A settlement run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementRun {
    /// Id (`sr-<20 digits>`).
    pub id: SmolStr,
    /// The caller's idempotency key.
    pub key: SmolStr,
    /// The settlement period.
    pub period: Period,
    /// State (publishing, running, finished: as bill runs).
    pub state: RunState,
    /// Who started it (`scheduler` for the monthly run).
    pub created_by: SmolStr,
    /// When.
    pub created_at: Timestamp,
    /// When every job was published.
    pub published_at: Option<Timestamp>,
    /// When the last item was resolved.
    pub finished_at: Option<Timestamp>,
    /// Partners.
    pub total: u64,
    /// Partners settled (a statement issued).
    pub settled: u64,
    /// Partners that failed (dead-lettered with a reason).
    pub failed: u64,
}

impl SettlementRun {
    /// Items resolved.
    pub fn done(&self) -> u64 {
        self.settled + self.failed
    }
}

/// What happened to one partner of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SettlementItemState {
    /// Not settled yet.
    Pending,
    /// Settled: the statement issued.
    Settled {
        /// Statement number.
        statement: SmolStr,
    },
    /// Could not be settled.
    Failed {
        /// Reason code.
        reason: SmolStr,
        /// Message.
        message: String,
    },
}

/// One partner of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementItem {
    /// Run.
    pub run: SmolStr,
    /// Partner.
    pub partner: PartnerId,
    /// State.
    #[serde(flatten)]
    pub state: SettlementItemState,
    /// Last change.
    pub updated_at: Timestamp,
}

/// The id of the `seq`-th settlement run (sorts by creation).
pub fn settlement_run_id(seq: u64) -> SmolStr {
    smol_str::format_smolstr!("sr-{seq:020}")
}

/// Counts an item's resolution on its run (finishing the run when all are done and it is no
/// longer publishing).
pub fn count_item(run: &mut SettlementRun, state: &SettlementItemState, at: Timestamp) {
    match state {
        SettlementItemState::Pending => {}
        SettlementItemState::Settled { .. } => run.settled += 1,
        SettlementItemState::Failed { .. } => run.failed += 1,
    }
    if run.done() >= run.total && run.state != RunState::Publishing {
        run.state = RunState::Finished;
        run.finished_at.get_or_insert(at);
    }
}
