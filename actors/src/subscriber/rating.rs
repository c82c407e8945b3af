//! Rating batches of CDRs: prepared against a copy of the account, then committed alone
//! ([`RateCdrs`]) or as part of a batch transaction ([`RateCdrsIn`]).

use std::collections::HashSet;
use std::time::Instant;

use actix::prelude::*;
use smol_str::SmolStr;
use tollgate_domain::ids::PartnerId;
use tollgate_domain::ledger::{Account, AccountWrite, Effects, PartnerInboxRow};
use tollgate_domain::money::Money;
use tollgate_domain::partner::InboxRecord;
use tollgate_domain::rating::{RatingError, rate};

use super::{Reply, StoredRated, StoredRatedOut, SubscriberActor, UsageRecord, ready};
use crate::batch::RateCdrsIn;
use crate::messages::{ActorError, CdrOutcome, RateCdrs};

/// A rated batch before it is durable: the outcomes, and the write with the state it leads to
/// (none when nothing changes: only duplicates or suspended records).
struct PreparedBatch {
    outcomes: Vec<CdrOutcome>,
    commit: Option<PreparedCommit>,
}

/// The write of a prepared batch, the account it leads to, and the answers it stores.
type PreparedCommit = (AccountWrite, Account, Vec<(SmolStr, Vec<u8>)>);

/// The partners whose inbox `write` fills (each once).
fn partners_of(write: &AccountWrite) -> Vec<PartnerId> {
    let mut partners: Vec<PartnerId> = Vec::new();
    for row in &write.partner_inbox {
        if !partners.contains(&row.partner) {
            partners.push(row.partner.clone());
        }
    }
    partners
}

impl SubscriberActor {
    /// Rates `cdrs` against a copy of the account; nothing is applied or written.
    fn prepare_batch(
        &mut self,
        cdrs: Vec<tollgate_domain::cdr::Cdr>,
    ) -> Result<PreparedBatch, ActorError> {
        self.last_active = Instant::now();
        let timeline = self.shared.timeline();
        let thresholds = self.shared.settings.thresholds;
        let now = (self.shared.clock)();
        let mut outcomes = Vec::with_capacity(cdrs.len());
        let mut answers: Vec<(SmolStr, Vec<u8>)> = Vec::new();
        let mut usage: Vec<(SmolStr, Vec<u8>)> = Vec::new();
        let mut inbox: Vec<PartnerInboxRow> = Vec::new();
        let mut all = Effects::default();
        let mut batch_keys: HashSet<SmolStr> = HashSet::new();
        let (mut next, profile, first_seq) = match self.load() {
            Ok(l) => (l.account.clone(), l.profile.clone(), l.account.entry_count),
            Err(e) => return Err(e),
        };
        for cdr in cdrs {
            let key = smol_str::format_smolstr!("cdr:{}", cdr.id);
            let earlier = if batch_keys.contains(&key) {
                answers
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, a)| a.clone())
            } else {
                self.answer(&key)?
            };
            if let Some(stored) = earlier {
                // The first answer, repeated: its charge and the version that priced it.
                let first = serde_json::from_slice::<StoredRated>(&stored)
                    .ok()
                    .filter(|s| s.outcome == "rated");
                self.shared
                    .metrics
                    .cdrs
                    .with_label_values(&["duplicate"])
                    .inc();
                outcomes.push(CdrOutcome::Duplicate {
                    cdr_id: SmolStr::new(cdr.id.as_str()),
                    charge: first
                        .as_ref()
                        .map_or(Money::zero(next.currency), |s| s.charge),
                    catalogue_version: first.and_then(|s| s.catalogue_version),
                });
                continue;
            }
            // Priced by the version in force when the usage started.
            let rated = timeline
                .at(cdr.start)
                .ok_or(RatingError::NoCatalogueVersion(cdr.start))
                .and_then(|(version, catalogue)| {
                    rate(catalogue, &profile, &cdr, &next.counters).map(|r| (version, r))
                })
                .map_err(|e| (SmolStr::new(e.code()), e.to_string()))
                .and_then(|(version, rating)| {
                    next.charge(&rating, now)
                        .map(|effects| (version, rating, effects))
                        .map_err(|r| (SmolStr::new(r.code()), r.to_string()))
                });
            match rated {
                Ok((version, rating, effects)) => {
                    next.apply(&effects, &thresholds);
                    all.entries.extend(effects.entries);
                    let outcome = CdrOutcome::Rated {
                        cdr_id: SmolStr::new(cdr.id.as_str()),
                        charge: rating.charge,
                        explanation: rating.explanation.to_string(),
                        catalogue_version: version,
                    };
                    let record = UsageRecord {
                        rating: &rating,
                        catalogue_version: version,
                        cdr: &cdr,
                        rerate: None,
                    };
                    let stored = StoredRatedOut {
                        outcome: "rated",
                        charge: &rating.charge,
                        catalogue_version: version,
                    };
                    if let (Ok(answer), Ok(record)) =
                        (serde_json::to_vec(&stored), serde_json::to_vec(&record))
                    {
                        answers.push((key.clone(), answer));
                        usage.push((SmolStr::new(cdr.id.as_str()), record));
                        for (partner, shared) in InboxRecord::of_rating(&rating, cdr.start) {
                            if let Ok(record) = serde_json::to_vec(&shared) {
                                inbox.push(PartnerInboxRow {
                                    partner,
                                    key: SmolStr::new(cdr.id.as_str()),
                                    record,
                                });
                            }
                        }
                    }
                    batch_keys.insert(key);
                    self.shared.metrics.cdrs.with_label_values(&["rated"]).inc();
                    outcomes.push(outcome);
                }
                Err((reason, message)) => {
                    self.shared
                        .metrics
                        .cdrs
                        .with_label_values(&["suspended"])
                        .inc();
                    outcomes.push(CdrOutcome::Suspended {
                        cdr_id: SmolStr::new(cdr.id.as_str()),
                        reason,
                        message,
                    });
                }
            }
        }
        if answers.is_empty() {
            return Ok(PreparedBatch {
                outcomes,
                commit: None,
            });
        }
        let mut write = self.write(&next, &all, first_seq);
        write.answers = answers.clone();
        write.usage = usage;
        write.partner_inbox = inbox;
        Ok(PreparedBatch {
            outcomes,
            commit: Some((write, next, answers)),
        })
    }

    /// Applies a batch whose write is durable.
    fn batch_committed(
        &mut self,
        next: Account,
        answers: Vec<(SmolStr, Vec<u8>)>,
        partners: Vec<PartnerId>,
    ) {
        self.remember(answers);
        if let Some(state) = self.state.as_mut() {
            state.account = next;
        }
        self.shared.wake_partners(&partners);
    }
}

impl Handler<RateCdrs> for SubscriberActor {
    type Result = Reply<Vec<CdrOutcome>>;

    fn handle(&mut self, msg: RateCdrs, _ctx: &mut Self::Context) -> Self::Result {
        if self.retired {
            return ready(Err(ActorError::Retired));
        }
        let prepared = match self.prepare_batch(msg.0) {
            Ok(p) => p,
            Err(e) => return ready(Err(e)),
        };
        let PreparedBatch { outcomes, commit } = prepared;
        let Some((write, next, answers)) = commit else {
            return ready(Ok(outcomes));
        };
        let partners = partners_of(&write);
        let fut = self.commit(write);
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(
            move |result, act, _ctx| match result {
                Ok(()) => {
                    act.batch_committed(next, answers, partners);
                    Ok(outcomes)
                }
                Err(e) => {
                    act.state = None;
                    Err(e)
                }
            },
        )))
    }
}

impl Handler<RateCdrsIn> for SubscriberActor {
    type Result = Reply<Vec<CdrOutcome>>;

    /// Like [`RateCdrs`], but the write goes to the batch's coordinator, which commits the
    /// writes of every subscriber of the batch with the source position in one transaction;
    /// the actor takes no other message until the coordinator has decided.
    fn handle(&mut self, msg: RateCdrsIn, _ctx: &mut Self::Context) -> Self::Result {
        if self.retired {
            // Not a participant yet: the router resends the message to the successor.
            return ready(Err(ActorError::Retired));
        }
        let RateCdrsIn { cdrs, tx } = msg;
        let offer = tx.participant(self.id.clone());
        let prepared = match self.prepare_batch(cdrs) {
            Ok(p) => p,
            Err(e) => return ready(Err(e)),
        };
        let PreparedBatch { outcomes, commit } = prepared;
        let (write, after) = match commit {
            Some((write, next, answers)) => {
                let partners = partners_of(&write);
                (Some(write), Some((next, answers, partners)))
            }
            None => (None, None),
        };
        offer.offer(write, outcomes.clone());
        let decision = tx.decision();
        AtomicResponse::new(Box::pin(decision.into_actor(self).map(
            move |result, act, _ctx| match result {
                Ok(()) => {
                    if let Some((next, answers, partners)) = after {
                        act.batch_committed(next, answers, partners);
                    }
                    Ok(outcomes)
                }
                Err(e) => {
                    act.state = None;
                    Err(ActorError::Store(e))
                }
            },
        )))
    }
}
