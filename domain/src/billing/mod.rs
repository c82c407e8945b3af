//! Billing: customers, account hierarchies, subscriptions, price lists, bill cycles, and the
//! assembly of convergent invoices with proration, discounts and taxes.
//!
//! Everything here is a pure function of its inputs (no IO, no clock: callers pass "today"),
//! so the bill-cycle worker, the API and tests share the same rules. Types are serde
//! serializable; input types refuse unknown fields. Errors carry stable codes
//! (`hierarchy.*`, `subscription.*`, `billing.*`, `customer.*` for field validation) used as
//! API error codes and dead-letter reasons.
//!
//! Customer data is kept behind [`CustomerStore`] (one contract suite, [`contract`], for every
//! backend); [`plan`] checks each write against the stored state with the rules above.
//!
//! Rounding happens at two documented points only, both half-up to the currency's minor
//! units: each invoice line (usage, fee, discount) when it is created, and each tax line.
//! Totals are exact sums of rounded lines. The rules are written out in `docs/billing.md`.

mod build;
pub mod charges;
pub mod contract;
pub mod customer;
pub mod cycle;
pub mod discount;
mod error;
pub mod hierarchy;
pub mod invoice;
pub mod memory;
pub mod numbering;
pub mod plan;
pub mod price_list;
pub mod run;
pub mod run_contract;
pub mod run_memory;
pub mod setup;
pub mod store;
pub mod subscription;
pub mod tax;
pub mod usage;

#[cfg(test)]
mod tests;

pub use build::build_invoice;
pub use charges::{fee_lines, prorate};
pub use customer::{
    Address, ContactPerson, Customer, CustomerKind, CustomerStatus, FieldError, JuridicalPerson,
    PhysicalPerson,
};
pub use cycle::{
    BillCycle, BillDay, BillWeekday, Frequency, Period, PeriodSpec, find_cycle, period_has_ended,
};
pub use discount::{DiscountDefinition, DiscountLevel, DiscountScope, DiscountValue};
pub use error::BillingError;
pub use hierarchy::{Account, BilledAccount, Forest, Responsibility};
pub use invoice::{
    AccountCharges, Amount, DiscountLine, FeeKind, FeeLine, InvoiceDraft, InvoiceInput,
    InvoiceSection, InvoiceTotals, TaxShare, UsageLine, UsageSummary,
};
pub use memory::MemoryCustomerStore;
pub use numbering::NumberTemplate;
pub use price_list::{
    ChargeCategory, ChargeDefinition, ChargeKind, PriceByCurrency, PriceList, Timing,
};
pub use setup::{BillingSetup, INVOICE_NUMBER_TEMPLATE_DEFAULT};
pub use store::{
    AccountFilter, ChangeRecord, CustomerCommand, CustomerFilter, CustomerStore,
    CustomerStoreError, CustomerWrite, SubscriptionFilter, WriteContext,
};
pub use subscription::{AttachedCharge, StatusChange, Subscription, SubscriptionStatus};
pub use tax::{TaxBase, TaxLine, TaxRate, TaxScheme};
pub use usage::{merge_usage, summarize_usage};
