//! Rerating a subscriber's records of a time range (see `tollgate_domain::rating::rerate`):
//! every changed record gets a reversal of its old charge and its new charge as two new ledger
//! entries, in one durable write with the report (the job's idempotency answer), the new usage
//! records and the audit record. A job is applied once: asking again returns the first report.

use std::collections::HashSet;
use std::time::Instant;

use actix::prelude::*;
use rust_decimal::Decimal;
use serde::Deserialize;
use smol_str::SmolStr;
use tollgate_domain::cdr::Cdr;
use tollgate_domain::ids::PartnerId;
use tollgate_domain::ledger::{AccountWrite, Effects, Entry, EntryKind, PartnerInboxRow};
use tollgate_domain::money::Money;
use tollgate_domain::partner::{InboxRecord, OldCharge};
use tollgate_domain::rating::CounterUpdate;
use tollgate_domain::rating::rerate::{ChargedRecord, rerate};

use super::{Reply, SubscriberActor, UsageRecord, ready};
use crate::messages::{ActorError, Rerate, RerateReport};

/// The parts of a stored usage record rerating reads (records stored before usage kept the
/// record itself have no `cdr` and cannot be rerated).
#[derive(Deserialize)]
struct StoredUsage {
    cdr_id: SmolStr,
    charge: Money,
    #[serde(default)]
    catalogue_version: u64,
    #[serde(default)]
    counter_updates: Vec<CounterUpdate>,
    #[serde(default)]
    cdr: Option<Cdr>,
    #[serde(default)]
    product: Option<SmolStr>,
    #[serde(default)]
    service: Option<SmolStr>,
    #[serde(default)]
    charged_units: u64,
    #[serde(default)]
    partner_shares: Vec<StoredPartnerShare>,
}

/// The partner of a stored share (the rest is the rating's explanation).
#[derive(Deserialize)]
struct StoredPartnerShare {
    partner: PartnerId,
}

impl Handler<Rerate> for SubscriberActor {
    type Result = Reply<RerateReport>;

    fn handle(&mut self, msg: Rerate, _ctx: &mut Self::Context) -> Self::Result {
        if self.retired {
            return ready(Err(ActorError::Retired));
        }
        self.last_active = Instant::now();
        let key = smol_str::format_smolstr!("rerate:{}", msg.job);
        if !msg.dry_run {
            match self.answer(&key) {
                Ok(Some(stored)) => {
                    return ready(
                        serde_json::from_slice::<RerateReport>(&stored)
                            .map(|mut report| {
                                report.replayed = true;
                                report
                            })
                            .map_err(|e| ActorError::Unavailable(format!("stored report: {e}"))),
                    );
                }
                Ok(None) => {}
                Err(e) => return ready(Err(e)),
            }
        }
        let (account, profile) = match self.load() {
            Ok(l) => (l.account.clone(), l.profile.clone()),
            Err(e) => return ready(Err(e)),
        };
        let rows = match self.shared.store.recent_usage(&self.id, usize::MAX) {
            Ok(rows) => rows,
            Err(e) => return ready(Err(e.into())),
        };
        // Newest first: the first row of a record is its current charge.
        let mut seen: HashSet<SmolStr> = HashSet::new();
        let mut records = Vec::new();
        let mut not_rerateable = 0usize;
        let mut old_charges: std::collections::HashMap<SmolStr, OldCharge> =
            std::collections::HashMap::new();
        for row in rows {
            let Ok(stored) = serde_json::from_slice::<StoredUsage>(&row) else {
                not_rerateable += 1;
                continue;
            };
            if !seen.insert(stored.cdr_id.clone()) {
                continue;
            }
            match stored.cdr {
                None => not_rerateable += 1,
                Some(cdr) if cdr.start >= msg.from && cdr.start < msg.to => {
                    if let Some(product) = stored.product.clone() {
                        old_charges.insert(
                            stored.cdr_id.clone(),
                            OldCharge {
                                product,
                                service: stored.service.clone().unwrap_or_default(),
                                units: stored.charged_units,
                                charge: stored.charge,
                                partners: stored
                                    .partner_shares
                                    .iter()
                                    .map(|s| s.partner.clone())
                                    .collect(),
                            },
                        );
                    }
                    records.push(ChargedRecord {
                        cdr,
                        charge: stored.charge,
                        catalogue_version: stored.catalogue_version,
                        counter_updates: stored.counter_updates,
                    })
                }
                Some(_) => {}
            }
        }
        let considered = records.len();
        let cdrs: std::collections::HashMap<SmolStr, Cdr> = records
            .iter()
            .map(|r| (SmolStr::new(r.cdr.id.as_str()), r.cdr.clone()))
            .collect();
        let timeline = self.shared.timeline();
        let result = rerate(&timeline, &profile, &account.counters, records);
        let credit: Decimal = result.changed.iter().map(|(l, _)| l.credit).sum();
        let report = RerateReport {
            subscriber: SmolStr::new(self.id.as_str()),
            job: msg.job.clone(),
            from: msg.from,
            to: msg.to,
            dry_run: msg.dry_run,
            replayed: false,
            records: considered,
            unchanged: result.unchanged,
            changed: result.changed.iter().map(|(l, _)| l.clone()).collect(),
            failed: result.failed.clone(),
            not_rerateable,
            credit: Money::new(credit, account.currency),
        };
        if msg.dry_run {
            return ready(Ok(report));
        }
        let now = (self.shared.clock)();
        let thresholds = self.shared.settings.thresholds;
        let mut effects = Effects::default();
        let mut usage = Vec::new();
        let mut inbox: Vec<PartnerInboxRow> = Vec::new();
        for (line, rating) in &result.changed {
            let reference = line.cdr_id.clone();
            effects.entries.push(Entry {
                key: smol_str::format_smolstr!("rerate:{}:{}:reversal", msg.job, line.cdr_id),
                at: now,
                kind: EntryKind::Reversal,
                amount: line.old_charge.amount,
                reserved: Decimal::ZERO,
                reference: reference.clone(),
            });
            effects.entries.push(Entry {
                key: smol_str::format_smolstr!("rerate:{}:{}:charge", msg.job, line.cdr_id),
                at: now,
                kind: EntryKind::Charge,
                amount: -line.new_charge.amount,
                reserved: Decimal::ZERO,
                reference,
            });
            if let Some(cdr) = cdrs.get(&line.cdr_id) {
                // Partners: the old share taken off, the new one counted.
                let old = old_charges.get(&line.cdr_id).cloned().unwrap_or(OldCharge {
                    product: SmolStr::default(),
                    service: SmolStr::default(),
                    units: 0,
                    charge: line.old_charge,
                    partners: Vec::new(),
                });
                for (partner, key, shared) in
                    InboxRecord::of_rerate(&old, rating, cdr.start, msg.job.as_str())
                {
                    match serde_json::to_vec(&shared) {
                        Ok(record) => inbox.push(PartnerInboxRow {
                            partner,
                            key,
                            record,
                        }),
                        Err(e) => return ready(Err(ActorError::Unavailable(e.to_string()))),
                    }
                }
                let record = UsageRecord {
                    rating,
                    catalogue_version: line.new_version,
                    cdr,
                    rerate: Some(msg.job.as_str()),
                };
                match serde_json::to_vec(&record) {
                    Ok(bytes) => usage.push((line.cdr_id.clone(), bytes)),
                    Err(e) => return ready(Err(ActorError::Unavailable(e.to_string()))),
                }
            }
        }
        let answer = match serde_json::to_vec(&report) {
            Ok(a) => a,
            Err(e) => return ready(Err(ActorError::Unavailable(e.to_string()))),
        };
        let mut next = account.clone();
        next.apply(&effects, &thresholds);
        next.counters = result.counters;
        next.status = next.status_after(&thresholds);
        let mut write: AccountWrite = self.write(&next, &effects, account.entry_count);
        write.answers = vec![(key.clone(), answer.clone())];
        write.usage = usage;
        let mut partners: Vec<PartnerId> = Vec::new();
        for row in &inbox {
            if !partners.contains(&row.partner) {
                partners.push(row.partner.clone());
            }
        }
        write.partner_inbox = inbox;
        if let Some(mut record) = msg.audit {
            record.before = Some(serde_json::json!({
                "balance": account.balance.to_string(),
                "currency": account.currency,
            }));
            record.after = Some(serde_json::json!({
                "balance": next.balance.to_string(),
                "currency": next.currency,
                "job": msg.job,
                "from": msg.from.to_string(),
                "to": msg.to.to_string(),
                "changed": report.changed.len(),
                "credit": credit.to_string(),
            }));
            write.audit.push(record);
        }
        let fut = self.commit(write);
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(
            move |result, act, _ctx| match result {
                Ok(()) => {
                    act.remember([(key, answer)]);
                    if let Some(state) = act.state.as_mut() {
                        state.account = next;
                    }
                    act.shared.wake_partners(&partners);
                    Ok(report)
                }
                Err(e) => {
                    act.state = None;
                    Err(e)
                }
            },
        )))
    }
}
