//! Billing tests: every amount is worked out by hand in a comment next to its assertion.

mod customer;
mod cycle;
mod hierarchy;
mod invoice;
mod numbering;
mod properties;
mod proration;

use jiff::civil::Date;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::*;
use crate::ids::{AccountId, BillCycleId, CustomerId, ItemCode, SubscriptionId};
use crate::money::{Currency, Money};

pub(super) fn day(y: i16, m: i8, d: i8) -> Date {
    Date::new(y, m, d).unwrap()
}

pub(super) fn eur(amount: Decimal) -> Money {
    Money::new(amount, Currency::EUR)
}

/// November 2026: 30 days.
pub(super) fn november() -> Period {
    Period::new(day(2026, 11, 1), day(2026, 12, 1)).unwrap()
}

pub(super) fn monthly() -> BillCycle {
    BillCycle {
        id: BillCycleId::new("monthly-1"),
        frequency: Frequency::Monthly {
            bill_day: BillDay::Day(1),
        },
    }
}

pub(super) fn account(id: &str, parent: Option<&str>, responsibility: Responsibility) -> Account {
    Account {
        id: AccountId::new(id),
        customer: CustomerId::new("acme"),
        parent: parent.map(AccountId::new),
        currency: Currency::EUR,
        bill_cycle: BillCycleId::new("monthly-1"),
        tax_jurisdiction: "FR".into(),
        responsibility,
        discounts: Vec::new(),
    }
}

fn item(
    code: &str,
    kind: ChargeKind,
    category: ChargeCategory,
    tax_category: &str,
    prices: &[(Currency, Decimal)],
) -> ChargeDefinition {
    ChargeDefinition {
        code: ItemCode::new(code),
        name: code.to_string(),
        kind,
        category,
        tax_category: tax_category.into(),
        prices: prices.iter().copied().collect(),
        charge_suspended: true,
        trial_days: 0,
    }
}

/// `fee` 10.00 EUR / 12.00 USD a period in arrears, `fee-adv` 10.00 EUR in advance, `router`
/// rental 3.00 EUR in arrears (suspended days free), `setup` one-off 25.00 EUR.
pub(super) fn price_list() -> PriceList {
    let arrears = ChargeKind::Recurring {
        timing: Timing::InArrears,
    };
    let advance = ChargeKind::Recurring {
        timing: Timing::InAdvance,
    };
    let mut router = item(
        "router",
        arrears,
        ChargeCategory::Rental,
        "equipment",
        &[(Currency::EUR, dec!(3.00))],
    );
    router.charge_suspended = false;
    PriceList::new(
        "standard",
        [
            item(
                "fee",
                arrears,
                ChargeCategory::Fee,
                "telecom",
                &[(Currency::EUR, dec!(10.00)), (Currency::USD, dec!(12.00))],
            ),
            item(
                "fee-adv",
                advance,
                ChargeCategory::Fee,
                "telecom",
                &[(Currency::EUR, dec!(10.00))],
            ),
            router,
            item(
                "setup",
                ChargeKind::OneOff,
                ChargeCategory::Setup,
                "telecom",
                &[(Currency::EUR, dec!(25.00))],
            ),
        ],
    )
}

fn rate(category: &str, jurisdiction: &str, rate: Decimal, inclusive: bool) -> TaxRate {
    TaxRate {
        category: category.into(),
        jurisdiction: jurisdiction.into(),
        code: if inclusive { "VAT20-INC" } else { "VAT20" }.into(),
        rate,
        inclusive,
    }
}

/// 20 % exclusive on everything in FR and US.
pub(super) fn tax_scheme() -> TaxScheme {
    let mut rates = Vec::new();
    for jurisdiction in ["FR", "US"] {
        for category in ["telecom", "equipment", "usage"] {
            rates.push(rate(category, jurisdiction, dec!(0.20), false));
        }
    }
    TaxScheme {
        id: "vat".into(),
        rates,
    }
}

/// 20 % inclusive on everything in FR.
pub(super) fn inclusive_scheme() -> TaxScheme {
    TaxScheme {
        id: "vat-inc".into(),
        rates: ["telecom", "equipment", "usage"]
            .iter()
            .map(|c| rate(c, "FR", dec!(0.20), true))
            .collect(),
    }
}

/// A subscription of `account` with `items` attached, created on `activated` and active since.
pub(super) fn subscription(
    id: &str,
    account: &str,
    items: &[&str],
    activated: Date,
) -> Subscription {
    let mut s = Subscription::new(
        SubscriptionId::new(id),
        AccountId::new(account),
        "mobile-s".into(),
        activated,
    );
    s.transition(SubscriptionStatus::Active, activated).unwrap();
    s.charges = items
        .iter()
        .map(|code| AttachedCharge {
            item: ItemCode::new(code),
            quantity: 1,
            start: None,
            end: None,
            trial_days: None,
        })
        .collect();
    s
}

pub(super) fn charges(account: Account, subscriptions: Vec<Subscription>) -> AccountCharges {
    AccountCharges {
        customer_name: format!("Site {}", account.id),
        account,
        subscriptions,
        usage: Vec::new(),
    }
}

pub(super) fn usage(service: &str, amount: Money) -> UsageSummary {
    UsageSummary {
        service: service.into(),
        events: 3,
        quantity: dec!(180),
        amount,
        tax_category: "usage".into(),
    }
}

pub(super) fn input(payer: &str, period: Period, accounts: Vec<AccountCharges>) -> InvoiceInput {
    InvoiceInput {
        payer: AccountId::new(payer),
        cycle: monthly(),
        period,
        accounts,
        price_list: price_list(),
        discounts: Vec::new(),
        tax_scheme: tax_scheme(),
    }
}

/// The one-account invoice of `subscription` for `period`, its fee line amounts in cents.
pub(super) fn fee_minors(subscription: Subscription, period: Period) -> Vec<i64> {
    let payer = account("a", None, Responsibility::SelfPaying);
    let invoice = build_invoice(&input(
        "a",
        period,
        vec![charges(payer, vec![subscription])],
    ))
    .unwrap();
    invoice.sections[0]
        .fees
        .iter()
        .map(|f| f.amount.minor)
        .collect()
}
