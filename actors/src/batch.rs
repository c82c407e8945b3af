//! Batch transactions: the writes of every subscriber of an ingest batch committed together, with
//! the batch's source position and suspense rows, in one durable write.
//!
//! The coordinator (the node's ingestor) sends [`RateCdrsIn`] to each subscriber of the batch.
//! Each actor rates its records against a copy of its account, offers the resulting write (or
//! nothing) with its outcomes, and then waits for the decision before taking its next message;
//! on success it applies the copy, on failure it drops its cached state and reloads from
//! storage. The coordinator collects exactly one offer per participant (a participant that
//! fails or never runs counts as missing, and a batch with a missing participant is aborted),
//! commits, and decides.
//!
//! Coordinators must not interleave: two batches that each wait for an actor busy with the
//! other would deadlock, so the node runs one batch transaction at a time.

use std::sync::Arc;

use actix::Message;
use tokio::sync::{mpsc, watch};
use tollgate_domain::cdr::Cdr;
use tollgate_domain::ids::SubscriberId;
use tollgate_domain::ledger::{AccountWrite, StoreError};

use crate::messages::{ActorError, CdrOutcome};

/// Rate and charge CDRs of one subscriber as part of a batch transaction.
#[derive(Message, Clone)]
#[rtype(result = "Result<Vec<CdrOutcome>, ActorError>")]
pub struct RateCdrsIn {
    /// The subscriber's records of the batch.
    pub cdrs: Vec<Cdr>,
    /// The batch.
    pub tx: Arc<BatchTx>,
}

/// What one participant offers: its write (if anything changes) and its outcomes.
#[derive(Debug)]
pub struct Offer {
    /// The subscriber.
    pub subscriber: SubscriberId,
    /// The write, or `None` when nothing changes; `Err` when the participant failed.
    pub write: Result<Option<AccountWrite>, ()>,
    /// Outcomes, one per record, in order.
    pub outcomes: Vec<CdrOutcome>,
}

/// The shared state of one batch transaction.
pub struct BatchTx {
    offers: mpsc::UnboundedSender<Offer>,
    decision: watch::Receiver<Option<Result<(), StoreError>>>,
}

/// The coordinator's side of a batch transaction.
pub struct Coordinator {
    offers: mpsc::UnboundedReceiver<Offer>,
    decide: watch::Sender<Option<Result<(), StoreError>>>,
    participants: usize,
}

impl BatchTx {
    /// A transaction for `participants` subscribers, and its coordinator side.
    pub fn new(participants: usize) -> (Arc<BatchTx>, Coordinator) {
        let (offers_tx, offers_rx) = mpsc::unbounded_channel();
        let (decide, decision) = watch::channel(None);
        (
            Arc::new(BatchTx {
                offers: offers_tx,
                decision,
            }),
            Coordinator {
                offers: offers_rx,
                decide,
                participants,
            },
        )
    }

    /// Joins as `subscriber`. The returned guard offers "failed" if it is dropped before
    /// [`Participant::offer`], so the coordinator never waits for a participant that gave up.
    pub fn participant(self: &Arc<Self>, subscriber: SubscriberId) -> Participant {
        Participant {
            tx: Some(self.clone()),
            subscriber,
        }
    }

    /// Completes with the coordinator's decision (an error if it gave up without one).
    pub fn decision(&self) -> impl std::future::Future<Output = Result<(), StoreError>> + 'static {
        let mut rx = self.decision.clone();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(d) => d
                    .clone()
                    .unwrap_or_else(|| Err(StoreError::Io("no decision".into()))),
                Err(_) => Err(StoreError::Io(
                    "the batch coordinator stopped before deciding".into(),
                )),
            }
        }
    }
}

/// One participant's pending offer.
pub struct Participant {
    tx: Option<Arc<BatchTx>>,
    subscriber: SubscriberId,
}

impl Participant {
    /// Offers the participant's write and outcomes.
    pub fn offer(mut self, write: Option<AccountWrite>, outcomes: Vec<CdrOutcome>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.offers.send(Offer {
                subscriber: self.subscriber.clone(),
                write: Ok(write),
                outcomes,
            });
        }
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.offers.send(Offer {
                subscriber: self.subscriber.clone(),
                write: Err(()),
                outcomes: Vec::new(),
            });
        }
    }
}

impl Coordinator {
    /// Waits for one offer per participant. Returns early with what arrived when every handle of
    /// the transaction is gone (messages dropped undelivered).
    pub async fn offers(&mut self) -> Vec<Offer> {
        let mut out = Vec::with_capacity(self.participants);
        while out.len() < self.participants {
            match self.offers.recv().await {
                Some(offer) => out.push(offer),
                None => break,
            }
        }
        out
    }

    /// Tells every participant the outcome of the commit.
    pub fn decide(self, result: Result<(), StoreError>) {
        let _ = self.decide.send(Some(result));
    }
}
