//! Settlement agreements: a partner's term, currency, and versioned share rules.
//!
//! An agreement covers `[from, to)` (`to` open when absent). Its terms change by **versions**:
//! each [`AgreementVersion`] applies from its `valid_from` until the next one, and versions are
//! only ever appended ([`Agreement::amend`]), so the history of what applied when is kept and a
//! record is always shared under the version in force at its start.
//!
//! A rule shares a product's revenue, a service's revenue (any product), or the total invoiced
//! amount of a month ([`ShareTarget::InvoiceTotal`]). A record matching both a product rule and
//! a service rule of the same version is shared once, by the product rule (the more specific).

use std::collections::BTreeSet;
use std::fmt;

use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::error::PartnerError;
use crate::ids::PartnerId;
use crate::money::{Currency, Money};

/// Most decimal places of a per-unit or per-event share amount (finer than minor units: a
/// share of 0.0025 per message is common).
pub const SHARE_AMOUNT_SCALE_MAX: u32 = 6;
/// Most versions per agreement.
pub const VERSIONS_MAX: usize = 128;
/// Most rules per version.
pub const RULES_MAX: usize = 512;

/// What a rule takes a share of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareTarget {
    /// Revenue of one catalogue product.
    Product(SmolStr),
    /// Revenue of one service (voice, sms, data), whatever the product.
    Service(SmolStr),
    /// The total invoiced amount of the month (computed in batch from invoice totals).
    InvoiceTotal,
}

impl fmt::Display for ShareTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShareTarget::Product(p) => write!(f, "product:{p}"),
            ShareTarget::Service(s) => write!(f, "service:{s}"),
            ShareTarget::InvoiceTotal => f.write_str("invoice_total"),
        }
    }
}

/// How much of the target the partner gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareValue {
    /// Percent of the revenue (30 means 30 %), in `(0, 100]`.
    Percent(Decimal),
    /// A fixed amount per `unit` charged units (0.002 per 60 seconds).
    PerUnit {
        /// Amount per `unit` units.
        amount: Decimal,
        /// Units the amount is for (> 0).
        unit: u64,
    },
    /// A fixed amount per record (per invoice for [`ShareTarget::InvoiceTotal`]).
    PerEvent(Decimal),
}

/// One share rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareRule {
    /// What is shared.
    pub target: ShareTarget,
    /// How much.
    pub value: ShareValue,
}

/// The terms that apply from one day until the next version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementVersion {
    /// First day it applies.
    pub valid_from: Date,
    /// Share rules (at most one per target).
    pub shares: Vec<ShareRule>,
    /// Least the partner earns per settlement period (topped up on the statement).
    #[serde(default)]
    pub min_guarantee: Option<Money>,
    /// Most the partner earns per settlement period (cut on the statement).
    #[serde(default)]
    pub cap: Option<Money>,
    /// Who changed the terms and why (free text, kept with the history).
    #[serde(default)]
    pub note: Option<String>,
}

impl AgreementVersion {
    /// The rule for `target`, if any.
    pub fn rule(&self, target: &ShareTarget) -> Option<&ShareRule> {
        self.shares.iter().find(|r| &r.target == target)
    }
}

/// A partner's settlement agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agreement {
    /// Id.
    pub id: SmolStr,
    /// Partner.
    pub partner: PartnerId,
    /// First day of the term.
    pub from: Date,
    /// First day after the term (open-ended when absent).
    #[serde(default)]
    pub to: Option<Date>,
    /// Settlement currency: every revenue, share, guarantee and cap is in it.
    pub currency: Currency,
    /// Versions, by strictly increasing `valid_from`; the first starts on `from`.
    pub versions: Vec<AgreementVersion>,
}

fn before_end(day: Date, end: Option<Date>) -> bool {
    end.is_none_or(|end| day < end)
}

impl Agreement {
    fn dates(&self, message: impl Into<String>) -> PartnerError {
        PartnerError::InvalidDates {
            agreement: self.id.clone(),
            message: message.into(),
        }
    }

    fn share(&self, message: impl Into<String>) -> PartnerError {
        PartnerError::InvalidShare {
            agreement: self.id.clone(),
            message: message.into(),
        }
    }

    /// Whether `day` is inside the term.
    pub fn in_term(&self, day: Date) -> bool {
        self.from <= day && before_end(day, self.to)
    }

    /// The version in force on `day` (none outside the term).
    pub fn version_at(&self, day: Date) -> Option<&AgreementVersion> {
        if !self.in_term(day) {
            return None;
        }
        self.versions.iter().rev().find(|v| v.valid_from <= day)
    }

    /// Every target any version shares.
    pub fn targets(&self) -> BTreeSet<&ShareTarget> {
        self.versions
            .iter()
            .flat_map(|v| v.shares.iter().map(|r| &r.target))
            .collect()
    }

    /// Checks dates, currency, ranges and precision of every version (`agreement.*`).
    pub fn validate(&self) -> Result<(), PartnerError> {
        if self.id.trim().is_empty() {
            return Err(self.share("the agreement id must not be empty"));
        }
        if let Some(to) = self.to
            && to <= self.from
        {
            return Err(self.dates(format!(
                "term ends on {to}, not after its start {}",
                self.from
            )));
        }
        let Some(first) = self.versions.first() else {
            return Err(self.dates("an agreement has at least one version"));
        };
        if first.valid_from != self.from {
            return Err(self.dates(format!(
                "the first version starts on {}, the term on {}",
                first.valid_from, self.from
            )));
        }
        if self.versions.len() > VERSIONS_MAX {
            return Err(self.dates(format!("at most {VERSIONS_MAX} versions")));
        }
        for pair in self.versions.windows(2) {
            if pair[1].valid_from <= pair[0].valid_from {
                return Err(self.dates(format!(
                    "version of {} does not follow the one of {}",
                    pair[1].valid_from, pair[0].valid_from
                )));
            }
        }
        for version in &self.versions {
            self.validate_version(version)?;
        }
        Ok(())
    }

    fn validate_version(&self, version: &AgreementVersion) -> Result<(), PartnerError> {
        let day = version.valid_from;
        if !self.in_term(day) {
            return Err(self.dates(format!("version of {day} is outside the term")));
        }
        if version.shares.is_empty() || version.shares.len() > RULES_MAX {
            return Err(self.share(format!("version of {day}: 1..={RULES_MAX} share rules")));
        }
        let mut seen = BTreeSet::new();
        for rule in &version.shares {
            if !seen.insert(&rule.target) {
                return Err(self.share(format!("version of {day}: {} twice", rule.target)));
            }
            if let ShareTarget::Product(name) | ShareTarget::Service(name) = &rule.target
                && name.trim().is_empty()
            {
                return Err(self.share(format!("version of {day}: empty product or service")));
            }
            match rule.value {
                ShareValue::Percent(p) => {
                    if p <= Decimal::ZERO || p > Decimal::ONE_HUNDRED {
                        return Err(
                            self.share(format!("{}: percent {p} is outside (0, 100]", rule.target))
                        );
                    }
                }
                ShareValue::PerUnit { amount, unit } => {
                    if rule.target == ShareTarget::InvoiceTotal {
                        return Err(self.share("an invoice total has no units"));
                    }
                    if unit == 0 {
                        return Err(self.share(format!("{}: per 0 units", rule.target)));
                    }
                    self.check_rate(&rule.target, amount)?;
                }
                ShareValue::PerEvent(amount) => self.check_rate(&rule.target, amount)?,
            }
        }
        for (name, money) in [
            ("min_guarantee", version.min_guarantee),
            ("cap", version.cap),
        ] {
            let Some(money) = money else { continue };
            if money.currency != self.currency {
                return Err(PartnerError::CurrencyMismatch {
                    given: money.currency,
                    expected: self.currency,
                });
            }
            if money.amount <= Decimal::ZERO
                || money.amount.normalize().scale() > self.currency.minor_units()
            {
                return Err(self.share(format!(
                    "version of {day}: {name} {money} must be positive in minor units"
                )));
            }
        }
        if let (Some(floor), Some(cap)) = (version.min_guarantee, version.cap)
            && floor.amount > cap.amount
        {
            return Err(self.share(format!(
                "version of {day}: minimum guarantee {floor} above the cap {cap}"
            )));
        }
        Ok(())
    }

    fn check_rate(&self, target: &ShareTarget, amount: Decimal) -> Result<(), PartnerError> {
        if amount <= Decimal::ZERO || amount.normalize().scale() > SHARE_AMOUNT_SCALE_MAX {
            return Err(self.share(format!(
                "{target}: amount {amount} must be positive with at most \
                 {SHARE_AMOUNT_SCALE_MAX} decimals"
            )));
        }
        Ok(())
    }

    /// Appends a version (a change of terms from its `valid_from`); earlier versions are kept.
    ///
    /// The change must start after the last version and inside the term.
    pub fn amend(&mut self, version: AgreementVersion) -> Result<(), PartnerError> {
        if let Some(last) = self.versions.last()
            && version.valid_from <= last.valid_from
        {
            return Err(self.dates(format!(
                "a change from {} must follow the last version of {}",
                version.valid_from, last.valid_from
            )));
        }
        let mut amended = self.clone();
        amended.versions.push(version);
        amended.validate()?;
        *self = amended;
        Ok(())
    }
}

fn terms_overlap(a: &Agreement, b: &Agreement) -> bool {
    before_end(a.from, b.to) && before_end(b.from, a.to)
}

/// Refuses `candidate` when another agreement of the same partner shares one of its targets in
/// an overlapping term (`partner.overlapping_agreement`). Agreements with `candidate`'s id are
/// the candidate's own older state and are skipped.
pub fn check_overlap(existing: &[Agreement], candidate: &Agreement) -> Result<(), PartnerError> {
    let targets = candidate.targets();
    for other in existing {
        if other.id == candidate.id
            || other.partner != candidate.partner
            || !terms_overlap(other, candidate)
        {
            continue;
        }
        if let Some(target) = other.targets().into_iter().find(|t| targets.contains(t)) {
            return Err(PartnerError::OverlappingAgreement {
                partner: candidate.partner.clone(),
                agreement: candidate.id.clone(),
                existing: other.id.clone(),
                target: smol_str::format_smolstr!("{target}"),
            });
        }
    }
    Ok(())
}

/// Refuses `candidate` when, on any day of its term, the percent shares of one of its products
/// across all partners add up to more than 100 % (`partner.shares_exceed_price`).
///
/// Only percent rules are summed: per-unit and per-event amounts cannot be compared with a
/// price without the tariff, which this check does not have.
pub fn check_shares_within_price(
    existing: &[Agreement],
    candidate: &Agreement,
) -> Result<(), PartnerError> {
    let others: Vec<&Agreement> = existing.iter().filter(|a| a.id != candidate.id).collect();
    for target in candidate.targets() {
        let ShareTarget::Product(product) = target else {
            continue;
        };
        let involved: Vec<&Agreement> = others
            .iter()
            .copied()
            .filter(|a| a.targets().contains(target))
            .chain([candidate])
            .collect();
        // The sum only changes where a term or a version starts or a term ends.
        let days: BTreeSet<Date> = involved
            .iter()
            .flat_map(|a| a.versions.iter().map(|v| v.valid_from).chain(a.to))
            .chain([candidate.from])
            .filter(|d| candidate.in_term(*d))
            .collect();
        for day in days {
            let mut percent = Decimal::ZERO;
            for agreement in &involved {
                if let Some(ShareRule {
                    value: ShareValue::Percent(p),
                    ..
                }) = agreement.version_at(day).and_then(|v| v.rule(target))
                {
                    percent += *p;
                }
            }
            if percent > Decimal::ONE_HUNDRED {
                return Err(PartnerError::SharesExceedPrice {
                    product: product.clone(),
                    percent,
                    day,
                });
            }
        }
    }
    Ok(())
}

/// Every check for storing `candidate` next to `existing`: its own validation, overlaps, and
/// shares within the price.
pub fn check_agreement(existing: &[Agreement], candidate: &Agreement) -> Result<(), PartnerError> {
    candidate.validate()?;
    check_overlap(existing, candidate)?;
    check_shares_within_price(existing, candidate)
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use rust_decimal_macros::dec;

    use super::super::fixtures::*;
    use super::*;

    fn percent(p: Decimal) -> ShareValue {
        ShareValue::Percent(p)
    }

    #[test]
    fn versions_apply_from_their_day_and_history_is_kept() {
        let mut a = music_30();
        a.amend(version(
            date(2026, 3, 15),
            vec![rule(product("music-plus"), percent(dec!(35)))],
        ))
        .unwrap();
        assert_eq!(a.versions.len(), 2);
        let rate = |d| a.version_at(d).and_then(|v| v.rule(&product("music-plus")));
        assert_eq!(rate(date(2026, 3, 14)).unwrap().value, percent(dec!(30)));
        assert_eq!(rate(date(2026, 3, 15)).unwrap().value, percent(dec!(35)));
        assert!(a.version_at(date(2025, 12, 31)).is_none());
        // A change cannot rewrite the past.
        let err = a
            .amend(version(
                date(2026, 3, 1),
                vec![rule(product("x"), percent(dec!(1)))],
            ))
            .unwrap_err();
        assert_eq!(err.code(), "agreement.invalid_dates");
        assert_eq!(a.versions.len(), 2);
    }

    #[test]
    fn validation_codes() {
        let mut a = music_30();
        a.to = Some(date(2026, 1, 1));
        assert_eq!(a.validate().unwrap_err().code(), "agreement.invalid_dates");

        let mut a = music_30();
        a.versions[0].valid_from = date(2026, 1, 2);
        assert_eq!(a.validate().unwrap_err().code(), "agreement.invalid_dates");

        let mut a = music_30();
        a.versions[0].shares[0].value = percent(dec!(100.5));
        assert_eq!(a.validate().unwrap_err().code(), "agreement.invalid_share");

        let mut a = music_30();
        a.versions[0].shares[0].value = ShareValue::PerEvent(dec!(0.0000001));
        assert_eq!(a.validate().unwrap_err().code(), "agreement.invalid_share");

        let mut a = music_30();
        a.versions[0].shares.push(rule(
            ShareTarget::InvoiceTotal,
            ShareValue::PerUnit {
                amount: dec!(1),
                unit: 60,
            },
        ));
        assert_eq!(a.validate().unwrap_err().code(), "agreement.invalid_share");

        let mut a = music_30();
        a.versions[0].min_guarantee = Some(Money::new(dec!(10), Currency::USD));
        assert_eq!(
            a.validate().unwrap_err().code(),
            "agreement.currency_mismatch"
        );

        let mut a = music_30();
        a.versions[0].cap = Some(eur(dec!(10.005)));
        assert_eq!(a.validate().unwrap_err().code(), "agreement.invalid_share");

        let mut a = music_30();
        a.versions[0].min_guarantee = Some(eur(dec!(200)));
        a.versions[0].cap = Some(eur(dec!(100)));
        assert_eq!(a.validate().unwrap_err().code(), "agreement.invalid_share");

        let mut a = music_30();
        a.versions[0]
            .shares
            .push(rule(product("music-plus"), percent(dec!(1))));
        assert_eq!(a.validate().unwrap_err().code(), "agreement.invalid_share");
    }

    #[test]
    fn overlapping_agreements_for_the_same_target_are_refused() {
        let existing = music_30();
        let mut second = music_30();
        second.id = "agr-music-2".into();
        second.from = date(2026, 6, 1);
        second.versions[0].valid_from = date(2026, 6, 1);
        let err = check_overlap(std::slice::from_ref(&existing), &second).unwrap_err();
        assert_eq!(err.code(), "partner.overlapping_agreement");

        // Once the first ends before the second starts, it is fine.
        let mut ended = existing.clone();
        ended.to = Some(date(2026, 6, 1));
        check_overlap(&[ended.clone()], &second).unwrap();
        // Another product of the same partner, or another partner, is fine too.
        let other_product = agreement(
            "agr-video",
            "acme-music",
            vec![rule(product("video"), percent(dec!(50)))],
        );
        check_overlap(std::slice::from_ref(&existing), &other_product).unwrap();
        // The same agreement being updated does not overlap itself.
        check_overlap(std::slice::from_ref(&existing), &existing).unwrap();
    }

    #[test]
    fn shares_of_a_product_above_its_price_are_refused() {
        let acme = music_30();
        // 30 % + 60 % = 90 %: fine.
        let mut label = agreement(
            "agr-label",
            "big-label",
            vec![rule(product("music-plus"), percent(dec!(60)))],
        );
        check_agreement(std::slice::from_ref(&acme), &label).unwrap();
        // From 2026-05-01 the label asks 75 %: 30 % + 75 % = 105 % on that day.
        label
            .amend(version(
                date(2026, 5, 1),
                vec![rule(product("music-plus"), percent(dec!(75)))],
            ))
            .unwrap();
        let err = check_agreement(std::slice::from_ref(&acme), &label).unwrap_err();
        assert_eq!(err.code(), "partner.shares_exceed_price");
        assert!(matches!(
            err,
            PartnerError::SharesExceedPrice { day, percent, .. }
                if day == date(2026, 5, 1) && percent == dec!(105)
        ));
        // If Acme's agreement ends before, the sum never passes 100 %.
        let mut acme_ended = acme.clone();
        acme_ended.to = Some(date(2026, 5, 1));
        check_agreement(&[acme_ended], &label).unwrap();
    }
}
