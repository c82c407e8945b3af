//! Disputes on a partner statement or some of its lines.
//!
//! `open -> resolved` (by a credit note to the partner or an ad-hoc credit) or
//! `open -> rejected` (with a reason). Resolved and rejected are final; anything else is
//! refused with `dispute.illegal_transition`. Every step, including the opening, is kept in
//! the history with who and when (the caller passes "now").

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::agreement::ShareTarget;
use super::error::PartnerError;
use super::statement::PartnerStatement;
use crate::ids::PartnerId;
use crate::money::Money;

/// Longest reason or note.
pub const REASON_LEN_MAX: usize = 2000;

/// How a dispute was settled in the partner's favour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// A credit note to the partner (a self-billing correction document).
    CreditNote {
        /// Its document number.
        number: SmolStr,
        /// Its amount.
        amount: Money,
    },
    /// An ad-hoc credit booked on the partner's next settlement.
    AdHocCredit {
        /// Amount.
        amount: Money,
        /// Booking reference.
        reference: SmolStr,
    },
}

/// Where a dispute is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeState {
    /// Waiting for a decision.
    Open,
    /// Settled in the partner's favour.
    Resolved(Resolution),
    /// Refused, with the reason.
    Rejected(String),
}

impl DisputeState {
    /// As text.
    pub fn as_str(&self) -> &'static str {
        match self {
            DisputeState::Open => "open",
            DisputeState::Resolved(_) => "resolved",
            DisputeState::Rejected(_) => "rejected",
        }
    }
}

/// A step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeAction {
    /// Opened.
    Open,
    /// A note added while open.
    Comment,
    /// Resolved by a credit note.
    CreditNote,
    /// Resolved by an ad-hoc credit.
    AdHocCredit,
    /// Rejected.
    Reject,
}

/// One step of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeEvent {
    /// What.
    pub action: DisputeAction,
    /// Who (user or partner id).
    pub by: SmolStr,
    /// When.
    pub at: Timestamp,
    /// Reason, note or reference.
    pub note: String,
}

/// A dispute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    /// Id.
    pub id: SmolStr,
    /// Partner.
    pub partner: PartnerId,
    /// Statement number disputed.
    pub statement: SmolStr,
    /// Lines disputed (empty: the whole statement).
    pub lines: Vec<ShareTarget>,
    /// What the partner says is missing, in the statement currency.
    pub claimed: Money,
    /// State.
    pub state: DisputeState,
    /// Every step, oldest first.
    pub history: Vec<DisputeEvent>,
    /// The statement whose payout includes this dispute's credit, once paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_in: Option<SmolStr>,
}

fn reason(text: &str, action: &'static str) -> Result<String, PartnerError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(PartnerError::DisputeReasonRequired(action));
    }
    if text.chars().count() > REASON_LEN_MAX {
        return Err(PartnerError::DisputeAmount(format!(
            "the text is longer than {REASON_LEN_MAX} characters"
        )));
    }
    Ok(text.to_string())
}

fn positive_minor(amount: Money, currency: crate::money::Currency) -> Result<(), PartnerError> {
    if amount.currency != currency {
        return Err(PartnerError::CurrencyMismatch {
            given: amount.currency,
            expected: currency,
        });
    }
    if amount.amount <= Decimal::ZERO || amount.amount.normalize().scale() > currency.minor_units()
    {
        return Err(PartnerError::DisputeAmount(format!(
            "{amount} must be positive and in minor units"
        )));
    }
    Ok(())
}

impl Dispute {
    /// Opens a dispute on a numbered statement (or some of its lines) with a reason.
    pub fn open(
        id: SmolStr,
        statement: &PartnerStatement,
        lines: Vec<ShareTarget>,
        claimed: Money,
        why: &str,
        by: SmolStr,
        at: Timestamp,
    ) -> Result<Dispute, PartnerError> {
        let Some(number) = &statement.number else {
            return Err(PartnerError::DisputeTransition {
                dispute: id,
                state: "unnumbered",
                action: "open a dispute on a statement without a number",
            });
        };
        for target in &lines {
            if statement.line(target).is_none() {
                return Err(PartnerError::DisputeUnknownLine(smol_str::format_smolstr!(
                    "{target}"
                )));
            }
        }
        positive_minor(claimed, statement.currency)?;
        let note = reason(why, "open a dispute")?;
        Ok(Dispute {
            id,
            partner: statement.partner.clone(),
            statement: SmolStr::new(number),
            lines,
            claimed,
            state: DisputeState::Open,
            history: vec![DisputeEvent {
                action: DisputeAction::Open,
                by,
                at,
                note,
            }],
            carried_in: None,
        })
    }

    fn require_open(&self, action: &'static str) -> Result<(), PartnerError> {
        if self.state == DisputeState::Open {
            Ok(())
        } else {
            Err(PartnerError::DisputeTransition {
                dispute: self.id.clone(),
                state: self.state.as_str(),
                action,
            })
        }
    }

    fn credit(&self, amount: Money, action: &'static str) -> Result<(), PartnerError> {
        self.require_open(action)?;
        positive_minor(amount, self.claimed.currency)?;
        if amount.amount > self.claimed.amount {
            return Err(PartnerError::DisputeAmount(format!(
                "credit {amount} is above the claim of {}",
                self.claimed
            )));
        }
        Ok(())
    }

    /// The credit this dispute still owes the partner: resolved by a credit note or an ad-hoc
    /// credit and not yet paid with a statement (`(kind, reference, amount)`).
    pub fn unpaid_credit(&self) -> Option<(&'static str, SmolStr, Money)> {
        if self.carried_in.is_some() {
            return None;
        }
        match &self.state {
            DisputeState::Resolved(Resolution::CreditNote { number, amount }) => {
                Some(("credit_note", number.clone(), *amount))
            }
            DisputeState::Resolved(Resolution::AdHocCredit { amount, reference }) => {
                Some(("adhoc_credit", reference.clone(), *amount))
            }
            _ => None,
        }
    }

    /// Adds a note while the dispute is open.
    pub fn comment(&mut self, note: &str, by: SmolStr, at: Timestamp) -> Result<(), PartnerError> {
        self.require_open("comment")?;
        let note = reason(note, "comment")?;
        self.history.push(DisputeEvent {
            action: DisputeAction::Comment,
            by,
            at,
            note,
        });
        Ok(())
    }

    /// Resolves by a credit note to the partner (at most the claimed amount).
    pub fn resolve_by_credit_note(
        &mut self,
        number: SmolStr,
        amount: Money,
        by: SmolStr,
        at: Timestamp,
    ) -> Result<(), PartnerError> {
        self.credit(amount, "resolve by credit note")?;
        let note = reason(&number, "resolve by credit note")?;
        self.state = DisputeState::Resolved(Resolution::CreditNote { number, amount });
        self.history.push(DisputeEvent {
            action: DisputeAction::CreditNote,
            by,
            at,
            note,
        });
        Ok(())
    }

    /// Resolves by an ad-hoc credit (at most the claimed amount).
    pub fn resolve_by_adhoc_credit(
        &mut self,
        amount: Money,
        reference: SmolStr,
        by: SmolStr,
        at: Timestamp,
    ) -> Result<(), PartnerError> {
        self.credit(amount, "resolve by ad-hoc credit")?;
        let note = reason(&reference, "resolve by ad-hoc credit")?;
        self.state = DisputeState::Resolved(Resolution::AdHocCredit { amount, reference });
        self.history.push(DisputeEvent {
            action: DisputeAction::AdHocCredit,
            by,
            at,
            note,
        });
        Ok(())
    }

    /// Rejects with a reason.
    pub fn reject(&mut self, why: &str, by: SmolStr, at: Timestamp) -> Result<(), PartnerError> {
        self.require_open("reject")?;
        let why = reason(why, "reject a dispute")?;
        self.state = DisputeState::Rejected(why.clone());
        self.history.push(DisputeEvent {
            action: DisputeAction::Reject,
            by,
            at,
            note: why,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use rust_decimal_macros::dec;

    use super::super::fixtures::*;
    use super::super::share::Position;
    use super::super::statement::build_statement;
    use super::*;
    use crate::billing::NumberTemplate;

    fn statement() -> PartnerStatement {
        let agreement = music_30();
        let mut position = Position::new(&agreement, march());
        let r = record("c1", "music-plus", date(2026, 3, 3), dec!(1234.56));
        position.accumulate(&agreement, &r).unwrap();
        let mut s = build_statement(&position, &agreement, None).unwrap();
        let template = NumberTemplate::parse("SB-{yyyy}-{seq:04}").unwrap();
        s.assign_number(&template, date(2026, 4, 1), "", 1).unwrap();
        s
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_775_000_000 + seconds).unwrap()
    }

    fn open() -> Dispute {
        Dispute::open(
            "d1".into(),
            &statement(),
            vec![product("music-plus")],
            eur(dec!(9.63)),
            "our count says 380.00",
            "partner:acme".into(),
            at(0),
        )
        .unwrap()
    }

    #[test]
    fn resolved_by_credit_note_with_history() {
        let mut d = open();
        d.comment("checking the March records", "ops:ana".into(), at(10))
            .unwrap();
        d.resolve_by_credit_note(
            "SBC-2026-0001".into(),
            eur(dec!(9.63)),
            "fin:bo".into(),
            at(20),
        )
        .unwrap();
        assert_eq!(d.state.as_str(), "resolved");
        let steps: Vec<(DisputeAction, &str)> = d
            .history
            .iter()
            .map(|e| (e.action, e.by.as_str()))
            .collect();
        assert_eq!(
            steps,
            [
                (DisputeAction::Open, "partner:acme"),
                (DisputeAction::Comment, "ops:ana"),
                (DisputeAction::CreditNote, "fin:bo"),
            ]
        );
        // Final: nothing more.
        let err = d.reject("late", "fin:bo".into(), at(30)).unwrap_err();
        assert_eq!(err.code(), "dispute.illegal_transition");
        let err = d.comment("late", "fin:bo".into(), at(30)).unwrap_err();
        assert_eq!(err.code(), "dispute.illegal_transition");
    }

    #[test]
    fn ad_hoc_credit_is_at_most_the_claim() {
        let mut d = open();
        let err = d
            .resolve_by_adhoc_credit(eur(dec!(9.64)), "ADJ-7".into(), "fin:bo".into(), at(5))
            .unwrap_err();
        assert_eq!(err.code(), "dispute.invalid_amount");
        let err = d
            .resolve_by_adhoc_credit(eur(dec!(1.001)), "ADJ-7".into(), "fin:bo".into(), at(5))
            .unwrap_err();
        assert_eq!(err.code(), "dispute.invalid_amount");
        d.resolve_by_adhoc_credit(eur(dec!(5.00)), "ADJ-7".into(), "fin:bo".into(), at(5))
            .unwrap();
        assert!(matches!(
            d.state,
            DisputeState::Resolved(Resolution::AdHocCredit { amount, .. }) if amount == eur(dec!(5.00))
        ));
        assert_eq!(d.history.len(), 2);
    }

    #[test]
    fn rejection_needs_a_reason_and_opening_checks_lines() {
        let mut d = open();
        let err = d.reject("  ", "fin:bo".into(), at(5)).unwrap_err();
        assert_eq!(err.code(), "dispute.reason_required");
        assert_eq!(d.state, DisputeState::Open);
        d.reject("records c7..c9 were refunded", "fin:bo".into(), at(6))
            .unwrap();
        assert_eq!(d.state.as_str(), "rejected");
        let err = d
            .resolve_by_credit_note("SBC-1".into(), eur(dec!(1)), "fin:bo".into(), at(7))
            .unwrap_err();
        assert_eq!(err.code(), "dispute.illegal_transition");

        let s = statement();
        let unknown = Dispute::open(
            "d2".into(),
            &s,
            vec![service("voice")],
            eur(dec!(1)),
            "x",
            "p".into(),
            at(0),
        );
        assert_eq!(unknown.unwrap_err().code(), "dispute.unknown_line");
        let mut unnumbered = s.clone();
        unnumbered.number = None;
        let err = Dispute::open(
            "d3".into(),
            &unnumbered,
            vec![],
            eur(dec!(1)),
            "x",
            "p".into(),
            at(0),
        );
        assert_eq!(err.unwrap_err().code(), "dispute.illegal_transition");
    }
}
