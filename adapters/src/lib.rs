//! IO adapters of Tollgate, each behind a trait defined by the layer that uses it.
//!
//! Job: the embedded durable store (default), the ScyllaDB store, the Kafka CDR source and
//! rated-output sink, the AMQP job queue (RabbitMQ) and its in-process equivalent, the file-drop
//! CDR source. Vendor errors are converted to Tollgate errors at this edge.
//!
//! Built from Step 2 on: the embedded store lives in [`embedded`]; the ledger's storage contract
//! on top of it in [`ledger`]; the administration storage contract (users, tokens, roles,
//! catalogue drafts and versions, audit trail) on the same store in [`admin`]; customer data
//! (customers, account hierarchies, subscriptions, billing setup, change history) in
//! [`customers`]; bill runs and invoices in [`bill_runs`]; finance after the invoice (periods,
//! payments, receivables, notes, dunning, the notification outbox, collection runs) in
//! [`finance`]; partner settlement (partners, agreements, positions, statements,
//! reconciliations, disputes, settlement runs) in [`partners`]; the durable job queues of
//! bill-cycle, collection and settlement runs (RabbitMQ and embedded) in [`jobs`].

pub mod admin;
pub mod bill_runs;
pub mod customers;
pub mod embedded;
pub mod finance;
pub mod jobs;
pub mod kafka;
pub mod kafka_output;
pub mod ledger;
pub mod mediation;
pub mod partners;
