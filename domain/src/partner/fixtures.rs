//! Builders shared by the tests of this module.

use jiff::civil::{Date, date};
use rust_decimal::Decimal;
use smol_str::SmolStr;

use super::agreement::{Agreement, AgreementVersion, ShareRule, ShareTarget, ShareValue};
use super::share::RatedRecord;
use crate::billing::Period;
use crate::ids::{CdrId, PartnerId};
use crate::money::{Currency, Money};

pub fn eur(amount: Decimal) -> Money {
    Money::new(amount, Currency::EUR)
}

pub fn product(name: &str) -> ShareTarget {
    ShareTarget::Product(SmolStr::new(name))
}

pub fn service(name: &str) -> ShareTarget {
    ShareTarget::Service(SmolStr::new(name))
}

pub fn rule(target: ShareTarget, value: ShareValue) -> ShareRule {
    ShareRule { target, value }
}

pub fn version(valid_from: Date, shares: Vec<ShareRule>) -> AgreementVersion {
    AgreementVersion {
        valid_from,
        shares,
        min_guarantee: None,
        cap: None,
        note: None,
    }
}

/// `id` for `partner` from 2026-01-01, open-ended, one version.
pub fn agreement(id: &str, partner: &str, shares: Vec<ShareRule>) -> Agreement {
    Agreement {
        id: SmolStr::new(id),
        partner: PartnerId::new(partner),
        from: date(2026, 1, 1),
        to: None,
        currency: Currency::EUR,
        versions: vec![version(date(2026, 1, 1), shares)],
    }
}

/// The 30 % music agreement of the acceptance examples.
pub fn music_30() -> Agreement {
    agreement(
        "agr-music",
        "acme-music",
        vec![rule(
            product("music-plus"),
            ShareValue::Percent(Decimal::from(30)),
        )],
    )
}

pub fn march() -> Period {
    Period {
        start: date(2026, 3, 1),
        end: date(2026, 4, 1),
    }
}

pub fn record(id: &str, product: &str, start: Date, revenue: Decimal) -> RatedRecord {
    RatedRecord {
        cdr_id: CdrId::new(id),
        product: SmolStr::new(product),
        service: SmolStr::new("data"),
        start,
        units: 60,
        revenue: eur(revenue),
        reversal: false,
    }
}
