//! The demo's partners: the sample catalogue shares SMS of `consumer` with `content-partner`
//! and voice of `business` with `carrier-b`; the demo gives both an agreement from the start of
//! the month, and prints their real-time positions after the traffic.

use std::sync::Arc;

use rust_decimal::Decimal;
use tollgate_domain::finance::FinancialPeriod;
use tollgate_domain::ids::PartnerId;
use tollgate_domain::money::Currency;
use tollgate_domain::partner::{Partner, PartnerStatus, ShareRule, ShareTarget, ShareValue};

use crate::partners::admin::{NewAgreement, VersionTerms};
use crate::partners::{Caller, Partners, off_thread};

fn caller() -> Caller {
    Caller {
        principal: "demo".into(),
        request_id: "demo".into(),
    }
}

/// Creates the two partners and their agreements (this month on).
pub async fn seed(partners: Arc<Partners>) -> Result<(), String> {
    let p = partners.clone();
    off_thread(move || {
        let from = p.date_of(p.now()).first_of_month();
        let deals = [
            (
                "content-partner",
                "Content Partner GmbH",
                ShareTarget::Service("sms".into()),
                ShareValue::Percent(Decimal::from(10)),
            ),
            (
                "carrier-b",
                "Carrier B AG",
                ShareTarget::Service("voice".into()),
                ShareValue::PerUnit {
                    amount: Decimal::new(2, 3),
                    unit: 60,
                },
            ),
        ];
        for (id, name, target, value) in deals {
            p.create_partner(
                Partner {
                    id: PartnerId::new(id),
                    legal_name: name.into(),
                    contacts: Vec::new(),
                    tax_id: None,
                    bank_reference: None,
                    status: PartnerStatus::Active,
                    tax: None,
                },
                &caller(),
            )?;
            p.create_agreement(
                &PartnerId::new(id),
                NewAgreement {
                    id: format!("agr-{id}"),
                    from,
                    to: None,
                    currency: Currency::EUR,
                    terms: VersionTerms {
                        valid_from: None,
                        shares: vec![ShareRule { target, value }],
                        min_guarantee: None,
                        cap: None,
                        note: Some("demo".into()),
                    },
                },
                &caller(),
            )?;
        }
        Ok(())
    })
    .await
    .map_err(|e| format!("demo partners: {e}"))
}

/// One line per partner: its position this month, exact and as the statement would round it.
pub async fn positions(partners: Arc<Partners>) -> Result<String, String> {
    let mut lines = vec!["partners (real-time positions this month):".to_string()];
    for id in ["content-partner", "carrier-b"] {
        let id = PartnerId::new(id);
        partners
            .router
            .drain(&id)
            .await
            .map_err(|e| format!("partner {id}: {e}"))?;
        let p = partners.clone();
        let line = off_thread(move || {
            let start = p.date_of(p.now()).first_of_month();
            let Some(position) = p.store.position(&id, start)? else {
                return Ok(format!(
                    "  {id} {}: nothing shared yet",
                    FinancialPeriod::id_of(start)
                ));
            };
            let records: u64 = position.lines.values().map(|l| l.records).sum();
            let exact: Decimal = position.lines.values().map(|l| l.share).sum();
            Ok(format!(
                "  {id} {}: {records} records, share {} {exact} (statement {} {})",
                FinancialPeriod::id_of(start),
                position.currency,
                position.currency,
                exact.round_dp_with_strategy(
                    2,
                    rust_decimal::RoundingStrategy::MidpointAwayFromZero
                ),
            ))
        })
        .await
        .map_err(|e| e.to_string())?;
        lines.push(line);
    }
    Ok(lines.join("\n"))
}
