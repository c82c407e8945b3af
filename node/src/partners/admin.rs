//! Partners and their agreements: creation and changes, audited with before and after.
//!
//! Rules beyond the domain's (`check_agreement`: dates, ranges, overlapping products, percent
//! shares of a product above 100 % across partners):
//! - settlement is monthly, so an agreement's term starts on the first day of a month and ends
//!   (if it ends) on the first day of a month (`agreement.term_not_monthly`);
//! - the terms of one partner's agreements never overlap (`partner.overlapping_agreement`):
//!   a month is settled under one agreement;
//! - a change of terms (a new version) applies from a future day (`agreement.retroactive`):
//!   records already shared keep the terms they were shared under, and the history is kept.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use tollgate_domain::admin::AuditRecord;
use tollgate_domain::ids::PartnerId;
use tollgate_domain::money::Currency;
use tollgate_domain::partner::{
    Agreement, AgreementVersion, Partner, PartnerError, PartnerRecord, PartnerWrite,
    check_agreement,
};
use utoipa::ToSchema;

use super::{Caller, PartnerFailure, Partners};

/// Rows read per page.
const PAGE: usize = 1_000;

/// A new agreement.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgreement {
    /// Id (unique over all partners).
    pub id: String,
    /// First day of the term (the first of a month).
    #[schema(value_type = String, format = Date)]
    pub from: Date,
    /// First day after the term (the first of a month; open-ended when absent).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub to: Option<Date>,
    /// Settlement currency.
    #[schema(value_type = String)]
    pub currency: Currency,
    /// The terms from `from` on: `shares` (`{target: {product|service: name} | "invoice_total",
    /// value: {percent: "30"} | {per_unit: {amount, unit}} | {per_event: "0.01"}}`),
    /// `min_guarantee`, `cap`, `note`. `valid_from` defaults to `from`.
    #[schema(value_type = Object)]
    pub terms: VersionTerms,
}

/// The terms of one version.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VersionTerms {
    /// First day it applies (default: the agreement's start for the first version).
    #[serde(default)]
    pub valid_from: Option<Date>,
    /// Share rules.
    pub shares: Vec<tollgate_domain::partner::ShareRule>,
    /// Minimum guarantee per month.
    #[serde(default)]
    pub min_guarantee: Option<tollgate_domain::money::Money>,
    /// Cap per month.
    #[serde(default)]
    pub cap: Option<tollgate_domain::money::Money>,
    /// Why the terms are what they are.
    #[serde(default)]
    pub note: Option<String>,
}

impl VersionTerms {
    fn version(self, default_from: Option<Date>) -> Result<AgreementVersion, PartnerFailure> {
        let valid_from =
            self.valid_from
                .or(default_from)
                .ok_or_else(|| PartnerFailure::Refused {
                    code: "agreement.valid_from_required",
                    message: "a change of terms needs valid_from".into(),
                })?;
        Ok(AgreementVersion {
            valid_from,
            shares: self.shares,
            min_guarantee: self.min_guarantee,
            cap: self.cap,
            note: self.note,
        })
    }
}

fn first_of_month(day: Date) -> bool {
    day.day() == 1
}

impl Partners {
    fn audit(
        &self,
        by: &Caller,
        action: &str,
        target: String,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> AuditRecord {
        AuditRecord::new(
            self.now(),
            &by.principal,
            action,
            target,
            &by.request_id,
            before,
            after,
        )
    }

    /// Creates a partner (`partner.exists` when the id is taken). Blocking.
    pub fn create_partner(
        &self,
        partner: Partner,
        by: &Caller,
    ) -> Result<PartnerRecord, PartnerFailure> {
        partner.validate().map_err(PartnerError::InvalidPartner)?;
        let _guard = self.locked();
        if self.store.partner(&partner.id)?.is_some() {
            return Err(PartnerFailure::State {
                code: "partner.exists",
                message: format!("partner {} exists; change it with PUT", partner.id),
            });
        }
        let record = PartnerRecord {
            partner,
            version: 1,
        };
        let audit = self.audit(
            by,
            "partner.create",
            format!("partner/{}", record.partner.id),
            None,
            serde_json::to_value(&record).ok(),
        );
        self.commit(PartnerWrite {
            partners: vec![(record.clone(), 0)],
            audit: vec![audit],
            ..PartnerWrite::default()
        })?;
        Ok(record)
    }

    /// Replaces a partner's data; `expected_version`, when given, must be the stored version
    /// (`partner.version_mismatch`). Blocking.
    pub fn update_partner(
        &self,
        id: &PartnerId,
        mut partner: Partner,
        expected_version: Option<u64>,
        by: &Caller,
    ) -> Result<PartnerRecord, PartnerFailure> {
        if partner.id != *id {
            return Err(PartnerFailure::Refused {
                code: "partner.id_mismatch",
                message: format!("the body is partner {}, the path {id}", partner.id),
            });
        }
        partner.validate().map_err(PartnerError::InvalidPartner)?;
        let _guard = self.locked();
        let before = self.partner(id)?;
        if let Some(v) = expected_version
            && v != before.version
        {
            return Err(PartnerFailure::State {
                code: "partner.version_mismatch",
                message: format!("partner {id} is at version {}, not {v}", before.version),
            });
        }
        partner.id = id.clone();
        let record = PartnerRecord {
            partner,
            version: before.version + 1,
        };
        let audit = self.audit(
            by,
            "partner.update",
            format!("partner/{id}"),
            serde_json::to_value(&before).ok(),
            serde_json::to_value(&record).ok(),
        );
        self.commit(PartnerWrite {
            partners: vec![(record.clone(), before.version)],
            audit: vec![audit],
            ..PartnerWrite::default()
        })?;
        Ok(record)
    }

    /// Every agreement of every partner (for the checks across partners).
    fn all_agreements(&self) -> Result<Vec<Agreement>, PartnerFailure> {
        let mut all = Vec::new();
        let mut after: Option<PartnerId> = None;
        loop {
            let page = self.store.partners(after.as_ref(), PAGE)?;
            let full = page.len() == PAGE;
            after = page.last().map(|p| p.partner.id.clone());
            for record in page {
                all.extend(self.store.agreements(&record.partner.id)?);
            }
            if !full {
                return Ok(all);
            }
        }
    }

    fn check_terms(&self, candidate: &Agreement, all: &[Agreement]) -> Result<(), PartnerFailure> {
        if !first_of_month(candidate.from) || candidate.to.is_some_and(|to| !first_of_month(to)) {
            return Err(PartnerFailure::Refused {
                code: "agreement.term_not_monthly",
                message: format!(
                    "agreement {}: settlement is monthly, so the term starts (and ends) on the \
                     first day of a month",
                    candidate.id
                ),
            });
        }
        for other in all
            .iter()
            .filter(|a| a.partner == candidate.partner && a.id != candidate.id)
        {
            let overlap = other.from < candidate.to.unwrap_or(Date::MAX)
                && candidate.from < other.to.unwrap_or(Date::MAX);
            if overlap {
                return Err(PartnerError::OverlappingAgreement {
                    partner: candidate.partner.clone(),
                    agreement: candidate.id.clone(),
                    existing: other.id.clone(),
                    target: "term".into(),
                }
                .into());
            }
        }
        check_agreement(all, candidate)?;
        Ok(())
    }

    /// Creates an agreement for `partner`. Blocking.
    pub fn create_agreement(
        &self,
        partner: &PartnerId,
        request: NewAgreement,
        by: &Caller,
    ) -> Result<Agreement, PartnerFailure> {
        let _guard = self.locked();
        self.partner(partner)?;
        let id = request.id.trim();
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PartnerFailure::Refused {
                code: "agreement.bad_id",
                message: "an agreement id is 1 to 64 visible ASCII characters".into(),
            });
        }
        if let Some(existing) = self.store.agreement(id)? {
            return Err(PartnerFailure::State {
                code: "agreement.exists",
                message: format!(
                    "agreement {id} exists (partner {}); add a version to change its terms",
                    existing.partner
                ),
            });
        }
        let version = request.terms.version(Some(request.from))?;
        let agreement = Agreement {
            id: SmolStr::new(id),
            partner: partner.clone(),
            from: request.from,
            to: request.to,
            currency: request.currency,
            versions: vec![version],
        };
        let all = self.all_agreements()?;
        self.check_terms(&agreement, &all)?;
        let audit = self.audit(
            by,
            "agreement.create",
            format!("agreement/{id}"),
            None,
            serde_json::to_value(&agreement).ok(),
        );
        self.commit(PartnerWrite {
            agreements: vec![(agreement.clone(), 0)],
            audit: vec![audit],
            ..PartnerWrite::default()
        })?;
        Ok(agreement)
    }

    /// Appends a version to an agreement: new terms from `valid_from`, a future day. Blocking.
    pub fn amend_agreement(
        &self,
        partner: &PartnerId,
        id: &str,
        terms: VersionTerms,
        by: &Caller,
    ) -> Result<Agreement, PartnerFailure> {
        let _guard = self.locked();
        let before = self
            .store
            .agreement(id)?
            .filter(|a| a.partner == *partner)
            .ok_or_else(|| PartnerFailure::NotFound {
                code: "agreement.not_found",
                message: format!("partner {partner} has no agreement {id}"),
            })?;
        let version = terms.version(None)?;
        let today = self.date_of(self.now());
        if version.valid_from <= today {
            return Err(PartnerFailure::Refused {
                code: "agreement.retroactive",
                message: format!(
                    "new terms apply from a future day (today is {today}, asked {}): records \
                     already shared keep their terms",
                    version.valid_from
                ),
            });
        }
        let mut agreement = before.clone();
        agreement.amend(version)?;
        let all = self.all_agreements()?;
        self.check_terms(&agreement, &all)?;
        let audit = self.audit(
            by,
            "agreement.amend",
            format!("agreement/{id}"),
            serde_json::to_value(&before).ok(),
            serde_json::to_value(&agreement).ok(),
        );
        self.commit(PartnerWrite {
            agreements: vec![(agreement.clone(), before.versions.len() as u64)],
            audit: vec![audit],
            ..PartnerWrite::default()
        })?;
        Ok(agreement)
    }
}
