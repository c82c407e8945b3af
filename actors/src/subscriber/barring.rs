//! Service barring by collections (dunning): the actor makes the ledger's decision durable.

use std::time::Instant;

use actix::prelude::*;
use tollgate_domain::ledger::{Account, Barring};

use super::{Reply, SubscriberActor, balance_summary, ready};
use crate::messages::{BalanceView, SetBarring};

impl Handler<SetBarring> for SubscriberActor {
    type Result = Reply<BalanceView>;

    fn handle(&mut self, msg: SetBarring, _ctx: &mut Self::Context) -> Self::Result {
        if self.retired {
            return ready(Err(crate::messages::ActorError::Retired));
        }
        self.last_active = Instant::now();
        let key = smol_str::format_smolstr!("barring:{}", msg.key);
        let mut next = match self.load() {
            Ok(l) => l.account.clone(),
            Err(e) => return ready(Err(e)),
        };
        let replay = match self.answer(&key) {
            Ok(a) => a.is_some(),
            Err(e) => return ready(Err(e)),
        };
        if replay {
            // Applied once, the first time; the view is current.
            return ready(self.view());
        }
        let thresholds = self.shared.settings.thresholds;
        let now = (self.shared.clock)();
        let first_seq = next.entry_count;
        let barring = msg.barring.map(|reason| Barring {
            reason,
            since: now,
            key: msg.key.clone(),
        });
        let effects = match next.set_barring(barring) {
            Ok(e) => e,
            // A disconnection is for good: nothing is written, and the view still shows it.
            Err(_refused) => return ready(self.view()),
        };
        let changed = effects.barring.is_some();
        let before = barring_summary(&next);
        next.apply(&effects, &thresholds);
        // Even when nothing changes the key is remembered, so that a later replay of it never
        // applies it after another change.
        let mut write = self.write(&next, &effects, first_seq);
        write.answers = vec![(key.clone(), b"{}".to_vec())];
        if changed && let Some(mut record) = msg.audit {
            record.before = Some(before);
            record.after = Some(barring_summary(&next));
            write.audit.push(record);
        }
        let fut = self.commit(write);
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(
            move |result, act, _ctx| match result {
                Ok(()) => {
                    act.remember([(key, b"{}".to_vec())]);
                    if let Some(state) = act.state.as_mut() {
                        state.account = next;
                    }
                    act.view()
                }
                Err(e) => {
                    act.state = None;
                    Err(e)
                }
            },
        )))
    }
}

/// What an audit record keeps of an account around a barring change: the balance summary and
/// the barring in force.
fn barring_summary(account: &Account) -> serde_json::Value {
    let mut summary = balance_summary(account);
    if let serde_json::Value::Object(fields) = &mut summary {
        fields.insert(
            "barring".into(),
            serde_json::to_value(&account.barring).unwrap_or(serde_json::Value::Null),
        );
    }
    summary
}
