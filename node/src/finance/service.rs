//! Service effects of dunning: subscriptions and subscriber actors converge to the account's
//! dunning state ([`AccountDunning`]).
//!
//! - suspended: the subscriptions dunning suspended (those active when it did) are `suspended`,
//!   and every subscriber of the payer's invoice is barred (`dunning.suspended`): real-time
//!   reservations are refused with `account.barred`;
//! - disconnected: every subscription is deactivated and the subscribers stay barred
//!   (`dunning.disconnected`);
//! - neither (settled): the subscriptions dunning suspended are active again and the barring is
//!   lifted.
//!
//! Convergence is idempotent (a subscription already in the wanted status is left alone; a
//! barring is keyed by the state's change time), so it runs after every write that may change
//! the state, on every redelivered collection job, and on start for every account whose state
//! is not marked `converged` yet (a crash between the decision and the service change).

use std::sync::Arc;

use smol_str::SmolStr;
use tollgate_actors::{ActorError, SetBarring};
use tollgate_domain::billing::store::{CustomerCommand, WriteContext};
use tollgate_domain::billing::{Subscription, SubscriptionStatus};
use tollgate_domain::finance::AccountDunning;
use tollgate_domain::ids::AccountId;

use super::{Finance, FinanceFailure, off_thread};

/// What converging changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Converged {
    /// Subscriptions moved to another status.
    pub subscriptions: usize,
    /// Subscribers whose barring was set or lifted.
    pub subscribers: usize,
}

impl Finance {
    /// The subscriptions of every account on `payer`'s invoice.
    pub fn subtree_subscriptions(
        &self,
        payer: &AccountId,
    ) -> Result<Vec<Subscription>, FinanceFailure> {
        let forest = self.customers.forest()?;
        let subtree = forest
            .billed_subtree(payer)
            .map_err(|e| FinanceFailure::Refused {
                code: e.code(),
                message: e.to_string(),
            })?;
        let mut all = Vec::new();
        for billed in subtree {
            all.extend(self.customers.subscriptions_of(&billed.account)?);
        }
        Ok(all)
    }

    fn converge_subscriptions(
        &self,
        state: &AccountDunning,
        subscriptions: &[Subscription],
    ) -> Result<usize, FinanceFailure> {
        let now = self.now();
        let today = self.date_of(now);
        let context = WriteContext {
            at: now,
            principal: "collections".into(),
            credential: None,
            request_id: SmolStr::new(format!("dunning-{}", state.account)),
        };
        let mut moved = 0;
        for sub in subscriptions {
            let status = sub.status();
            let dunned = state.suspended_subscriptions.contains(&sub.id);
            let wanted = if state.disconnected {
                (status != SubscriptionStatus::Deactivated)
                    .then_some(SubscriptionStatus::Deactivated)
            } else if state.suspended {
                (dunned && status == SubscriptionStatus::Active)
                    .then_some(SubscriptionStatus::Suspended)
            } else {
                (dunned && status == SubscriptionStatus::Suspended)
                    .then_some(SubscriptionStatus::Active)
            };
            let Some(to) = wanted else { continue };
            let reason = state
                .reason
                .clone()
                .unwrap_or_else(|| "collections".to_string());
            match self.customers.apply(
                CustomerCommand::ChangeStatus {
                    subscription: sub.id.clone(),
                    status: to,
                    on: today,
                    reason: Some(reason),
                },
                &context,
            ) {
                Ok(_) => moved += 1,
                Err(tollgate_domain::billing::CustomerStoreError::Store(e)) => return Err(e.into()),
                // A transition the lifecycle refuses (dated later, already ended) is left alone.
                Err(e) => eprintln!(
                    "finance: subscription {} of {} not moved to {to:?}: {e}",
                    sub.id, state.account
                ),
            }
        }
        Ok(moved)
    }

    /// Brings `payer`'s subscriptions and subscriber barring in line with its dunning state.
    pub async fn converge(
        self: &Arc<Self>,
        payer: &AccountId,
    ) -> Result<Converged, FinanceFailure> {
        let this = self.clone();
        let p = payer.clone();
        let found = off_thread(move || {
            let state = this.dunning_state(&p)?;
            // Known to follow already (or never dunned): nothing to do. Subscriptions a care
            // agent changed since are theirs, not dunning's.
            if state.converged || state.changed_at.is_none() {
                return Ok(None);
            }
            let subscriptions = this.subtree_subscriptions(&p)?;
            let moved = this.converge_subscriptions(&state, &subscriptions)?;
            Ok(Some((state, subscriptions, moved)))
        })
        .await?;
        let Some((state, subscriptions, moved)) = found else {
            return Ok(Converged::default());
        };
        let mut done = Converged {
            subscriptions: moved,
            subscribers: 0,
        };
        let changed_at = state.changed_at.unwrap_or_default();
        let barring: Option<SmolStr> = if state.disconnected {
            Some("dunning.disconnected".into())
        } else if state.suspended {
            Some("dunning.suspended".into())
        } else {
            None
        };
        let label = barring.as_deref().unwrap_or("lifted");
        for sub in &subscriptions {
            let Some(subscriber) = &sub.subscriber else {
                continue;
            };
            let key = smol_str::format_smolstr!(
                "dunning:{payer}:{}:{label}",
                changed_at.as_millisecond()
            );
            let message = SetBarring {
                key,
                barring: barring.clone(),
                audit: None,
            };
            match self.router.send(subscriber, message).await {
                Ok(Ok(_)) => done.subscribers += 1,
                Ok(Err(ActorError::UnknownSubscriber(_)))
                | Err(ActorError::UnknownSubscriber(_)) => {}
                Ok(Err(e)) | Err(e) => {
                    return Err(FinanceFailure::Busy(format!(
                        "subscriber {subscriber} not barred yet: {e}"
                    )));
                }
            }
        }
        // Service follows this decision now: remember it, unless the decision changed meanwhile.
        if !state.converged {
            let this = self.clone();
            off_thread(move || {
                let _guard = this.locked();
                let current = this.dunning_state(&state.account)?;
                if current.changed_at == state.changed_at && !current.converged {
                    this.commit(tollgate_domain::finance::FinanceWrite {
                        accounts: vec![AccountDunning {
                            converged: true,
                            ..current
                        }],
                        ..Default::default()
                    })?;
                }
                Ok(())
            })
            .await?;
        }
        Ok(done)
    }

    /// Converges every account whose service may not follow its dunning state yet (after a
    /// restart).
    pub async fn converge_all(self: &Arc<Self>) {
        let this = self.clone();
        let accounts = match off_thread(move || Ok(this.store.unconverged_accounts()?)).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("finance: cannot read suspended accounts: {e}");
                return;
            }
        };
        for state in accounts {
            if let Err(e) = self.converge(&state.account).await {
                eprintln!("finance: account {} not converged yet: {e}", state.account);
            }
        }
    }
}
