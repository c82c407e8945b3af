//! The one error enum of the partner-settlement layer, with stable codes.

use jiff::civil::Date;
use smol_str::SmolStr;

use super::statement::StatementStage;
use crate::billing::{BillingError, FieldError};
use crate::ids::PartnerId;
use crate::money::{Currency, MoneyError};

/// Why a partner, an agreement, a share, a statement (or a step of its lifecycle), a
/// reconciliation or a dispute is refused.
///
/// Codes are stable: API error codes, dead-letter reasons and metric labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartnerError {
    /// Field validation of a partner failed (every problem is listed).
    #[error("invalid partner: {} problem(s)", .0.len())]
    InvalidPartner(Vec<FieldError>),
    /// Another agreement of the same partner covers the same product or service in an
    /// overlapping term.
    #[error("partner {partner}: agreement {agreement} overlaps {existing} for {target}")]
    OverlappingAgreement {
        /// Partner.
        partner: PartnerId,
        /// The agreement refused.
        agreement: SmolStr,
        /// The agreement already in force.
        existing: SmolStr,
        /// Product or service covered twice.
        target: SmolStr,
    },
    /// Percent shares of one product add up to more than 100 % of its price across partners.
    #[error("shares of product {product} add up to {percent}% on {day}")]
    SharesExceedPrice {
        /// Product.
        product: SmolStr,
        /// Sum of the percent shares.
        percent: rust_decimal::Decimal,
        /// First day it happens.
        day: Date,
    },
    /// An agreement's term or version dates are inconsistent.
    #[error("agreement {agreement}: {message}")]
    InvalidDates {
        /// Agreement.
        agreement: SmolStr,
        /// What is wrong.
        message: String,
    },
    /// A share rule, guarantee or cap that does not make sense (range, precision, unit).
    #[error("agreement {agreement}: {message}")]
    InvalidShare {
        /// Agreement.
        agreement: SmolStr,
        /// What is wrong.
        message: String,
    },
    /// Money in another currency than the agreement's.
    #[error("amount in {given}, agreement is in {expected}")]
    CurrencyMismatch {
        /// Given currency.
        given: Currency,
        /// Agreement currency.
        expected: Currency,
    },
    /// No version of the agreement is in force on that day.
    #[error("agreement {agreement} is not in force on {day}")]
    NotInForce {
        /// Agreement.
        agreement: SmolStr,
        /// Day asked.
        day: Date,
    },
    /// A record or invoice dated outside the position's period, or of another partner.
    #[error("{item} does not belong to this position: {message}")]
    OutsidePosition {
        /// Record or invoice id.
        item: SmolStr,
        /// Why.
        message: String,
    },
    /// A partner statement whose format is unknown or whose header is unusable.
    #[error("partner statement: {0}")]
    ReconcileFormat(String),
    /// A dispute transition not allowed from its current state.
    #[error("dispute {dispute} is {state}: cannot {action}")]
    DisputeTransition {
        /// Dispute.
        dispute: SmolStr,
        /// Its state.
        state: &'static str,
        /// What was asked.
        action: &'static str,
    },
    /// Rejecting (or opening) a dispute needs a reason.
    #[error("a reason is required to {0}")]
    DisputeReasonRequired(&'static str),
    /// A disputed line that is not on the statement.
    #[error("statement has no line {0}")]
    DisputeUnknownLine(SmolStr),
    /// A dispute or credit amount that is zero, negative, too fine or above the claim.
    #[error("invalid dispute amount: {0}")]
    DisputeAmount(String),
    /// A statement lifecycle step not allowed from the statement's current stage.
    #[error("statement {statement} is {stage}, not {required}: cannot {action} it")]
    StatementTransition {
        /// Statement number (`(unnumbered)` without one).
        statement: SmolStr,
        /// Its stage.
        stage: StatementStage,
        /// The stage the step needs.
        required: StatementStage,
        /// What was asked (`approve`, `release`).
        action: &'static str,
    },
    /// Releasing a statement (marking it paid) needs the payment reference.
    #[error("statement {0}: a payment reference is required to release it")]
    StatementReferenceRequired(SmolStr),
    /// Billing helpers (tax lines, number templates) refused.
    #[error(transparent)]
    Billing(#[from] BillingError),
    /// Money arithmetic failed (overflow, mixed currencies).
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl PartnerError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            PartnerError::InvalidPartner(_) => "partner.invalid",
            PartnerError::OverlappingAgreement { .. } => "partner.overlapping_agreement",
            PartnerError::SharesExceedPrice { .. } => "partner.shares_exceed_price",
            PartnerError::InvalidDates { .. } => "agreement.invalid_dates",
            PartnerError::InvalidShare { .. } => "agreement.invalid_share",
            PartnerError::CurrencyMismatch { .. } => "agreement.currency_mismatch",
            PartnerError::NotInForce { .. } => "agreement.not_in_force",
            PartnerError::OutsidePosition { .. } => "partner.outside_position",
            PartnerError::ReconcileFormat(_) => "reconcile.format",
            PartnerError::DisputeTransition { .. } => "dispute.illegal_transition",
            PartnerError::DisputeReasonRequired(_) => "dispute.reason_required",
            PartnerError::DisputeUnknownLine(_) => "dispute.unknown_line",
            PartnerError::DisputeAmount(_) => "dispute.invalid_amount",
            PartnerError::StatementTransition { .. } => "statement.stage",
            PartnerError::StatementReferenceRequired(_) => "statement.reference_required",
            PartnerError::Billing(e) => e.code(),
            PartnerError::Money(e) => e.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_codes_use_the_layer_prefixes() {
        let day = Date::constant(2026, 3, 1);
        let all = [
            PartnerError::InvalidPartner(Vec::new()),
            PartnerError::OverlappingAgreement {
                partner: PartnerId::new("p"),
                agreement: "a".into(),
                existing: "b".into(),
                target: "product:x".into(),
            },
            PartnerError::SharesExceedPrice {
                product: "x".into(),
                percent: rust_decimal::Decimal::ONE_HUNDRED,
                day,
            },
            PartnerError::NotInForce {
                agreement: "a".into(),
                day,
            },
            PartnerError::ReconcileFormat(String::new()),
            PartnerError::DisputeReasonRequired("reject"),
            PartnerError::StatementTransition {
                statement: "SB-1".into(),
                stage: StatementStage::Issued,
                required: StatementStage::Approved,
                action: "release",
            },
            PartnerError::StatementReferenceRequired("SB-1".into()),
        ];
        let codes: Vec<&str> = all.iter().map(PartnerError::code).collect();
        assert_eq!(
            codes,
            [
                "partner.invalid",
                "partner.overlapping_agreement",
                "partner.shares_exceed_price",
                "agreement.not_in_force",
                "reconcile.format",
                "dispute.reason_required",
                "statement.stage",
                "statement.reference_required",
            ]
        );
        assert_eq!(
            PartnerError::from(MoneyError::Overflow).code(),
            "money.overflow"
        );
    }
}
