//! Finance after the invoice: financial periods, payments and their allocation, receivables and
//! account statements, credit and debit notes, and collections (dunning).
//!
//! Like [`crate::billing`], everything here is pure: no IO and no clock (callers pass "today"
//! and "now"), so the API, the collection worker and tests share the same rules. Durable state
//! lives behind [`FinanceStore`]; every mutation is one [`FinanceWrite`], applied atomically.
//!
//! Money rules: amounts are exact [`Money`](crate::money::Money) in the account currency;
//! penalties and credit notes are rounded half-up to the currency's minor units where they are
//! created, and never again. A receivable entry's `amount` is positive when the customer owes
//! more (invoice, penalty, debit note, refund, reversal of a payment) and negative when the
//! customer owes less (payment, credit note).

pub mod allocation;
pub mod collect;
pub mod collection;
pub mod contract;
pub mod credit_note;
pub mod dunning;
mod error;
pub mod memory;
pub mod notification;
pub mod payment;
pub mod period;
pub mod receivable;
pub mod statement;
pub mod store;

pub use collect::{CollectInput, CollectPlan, Notice, Settlement};
pub use collection::{CollectionItem, CollectionItemState, CollectionRun};
pub use credit_note::{CreditNote, NoteInput, NoteKind, NoteLine};
pub use dunning::{
    AccountDunning, AppliedStep, DunningAction, DunningCase, DunningPolicy, DunningStep,
    PenaltyValue,
};
pub use error::FinanceError;
pub use memory::MemoryFinanceStore;
pub use notification::{Channel, Notification};
pub use payment::{Allocation, AllocationRequest, Payment, PaymentMethod, PaymentState, Refund};
pub use period::{ClosedScope, FinancialPeriod, PeriodAction, PeriodEvent, PeriodState};
pub use receivable::{ArEntry, ArKind, InvoiceBalance};
pub use statement::{Statement, StatementLine};
pub use store::{FinanceStore, FinanceWrite};
