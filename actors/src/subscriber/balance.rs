//! Balance views: what care agents and network elements see of a subscriber.

use std::time::Instant;

use actix::prelude::*;
use jiff::Timestamp;
use rust_decimal::Decimal;
use tollgate_domain::catalogue::{Catalogue, Offer};
use tollgate_domain::ledger::Account;
use tollgate_domain::money::Money;
use tollgate_domain::rating::CounterKey;
use tollgate_domain::subscriber::SubscriberProfile;

use super::SubscriberActor;
use crate::messages::{ActorError, BalanceView, FreeUnits, GetBalance};

impl SubscriberActor {
    /// The balances now; free units as the catalogue version in force now grants them.
    pub(super) fn view(&mut self) -> Result<BalanceView, ActorError> {
        let now = (self.shared.clock)();
        let timeline = self.shared.timeline();
        let catalogue = timeline.latest_in_force(now).map(|(_, c)| c);
        let thresholds = self.shared.settings.thresholds;
        let loaded = self.load()?;
        // Lapsed reservations count as released in what we show, even before they are written.
        let mut account = loaded.account.clone();
        let expired = account.expire(now);
        account.apply(&expired, &thresholds);
        let money = |amount: Decimal| Money::new(amount, account.currency);
        // No version in force yet (all are still to come): no free units to show.
        let free_units = catalogue.map_or_else(Vec::new, |catalogue| {
            free_units(catalogue, &loaded.profile, &account, now)
        });
        Ok(BalanceView {
            subscriber: account.subscriber.clone(),
            mode: account.mode,
            status: account.status,
            balance: money(account.balance),
            reserved: money(account.reserved),
            available: money(account.available()),
            open_sessions: account.reservations.len(),
            free_units,
            entries: account.entry_count,
            barred: account.barring.as_ref().map(|b| b.reason.clone()),
        })
    }
}

/// Free units left in the allowances of the subscriber's products, this period.
fn free_units(
    catalogue: &Catalogue,
    profile: &SubscriberProfile,
    account: &Account,
    now: Timestamp,
) -> Vec<FreeUnits> {
    let mut free_units = Vec::new();
    for offer in &profile.products {
        let products: Vec<u32> = match catalogue.offer(offer) {
            Some(Offer::Product(p)) => vec![p],
            Some(Offer::Bundle(b)) => catalogue
                .bundles
                .get(b as usize)
                .map(|b| b.products.clone())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        for p in products {
            let Some(product) = catalogue.products.get(p as usize) else {
                continue;
            };
            for &a in &product.allowances {
                let Some(allowance) = catalogue.allowances.get(a as usize) else {
                    continue;
                };
                let period = allowance.period.key(&catalogue.timezone, now);
                let used = account
                    .counters
                    .get(&CounterKey {
                        name: allowance.counter.clone(),
                        period: period.clone(),
                    })
                    .units;
                free_units.push(FreeUnits {
                    allowance: allowance.id.clone(),
                    period,
                    left: allowance.units.saturating_sub(used),
                    total: allowance.units,
                });
            }
        }
    }
    free_units
}

impl Handler<GetBalance> for SubscriberActor {
    type Result = Result<BalanceView, ActorError>;

    fn handle(&mut self, _msg: GetBalance, _ctx: &mut Self::Context) -> Self::Result {
        if self.retired {
            return Err(ActorError::Retired);
        }
        self.last_active = Instant::now();
        self.view()
    }
}
