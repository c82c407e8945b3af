//! Invoice assembly: discounts, taxes, currencies and refusals.

use rust_decimal_macros::dec;

use super::*;
use crate::ids::DiscountId;

fn discount(id: &str, value: DiscountValue, scope: DiscountScope) -> DiscountDefinition {
    DiscountDefinition {
        id: DiscountId::new(id),
        name: id.to_string(),
        value,
        scope,
        min_amount: None,
        min_usage: None,
        valid_from: None,
        valid_to: None,
    }
}

fn percent(p: Decimal) -> DiscountValue {
    DiscountValue::Percentage { percent: p }
}

fn fixed(amount: Decimal) -> DiscountValue {
    DiscountValue::Fixed {
        amounts: [(Currency::EUR, amount)].into_iter().collect(),
    }
}

/// Payer `a` (FR) with one subscription `s1` (fee 10.00 + router 3.00, all November) and
/// 27.00 of voice usage: 40.00 before discounts.
fn base_input() -> InvoiceInput {
    let payer = account("a", None, Responsibility::SelfPaying);
    let sub = subscription("s1", "a", &["fee", "router"], day(2026, 10, 1));
    let mut section = charges(payer, vec![sub]);
    section.usage.push(usage("voice", eur(dec!(27.00))));
    input("a", november(), vec![section])
}

fn attach_to_subscription(input: &mut InvoiceInput, id: &str) {
    input.accounts[0].subscriptions[0]
        .discounts
        .push(DiscountId::new(id));
}

fn attach_to_account(input: &mut InvoiceInput, id: &str) {
    input.accounts[0]
        .account
        .discounts
        .push(DiscountId::new(id));
}

#[test]
fn percentage_on_an_item_then_fixed_on_the_invoice() {
    let mut input = base_input();
    input.discounts = vec![
        discount(
            "fee10",
            percent(dec!(10)),
            DiscountScope::Item {
                code: ItemCode::new("fee"),
            },
        ),
        discount("five-off", fixed(dec!(5.00)), DiscountScope::Invoice),
    ];
    attach_to_subscription(&mut input, "fee10");
    attach_to_account(&mut input, "five-off");
    let invoice = build_invoice(&input).unwrap();
    let section = &invoice.sections[0];
    // Item level: 10 % of the 10.00 fee = -1.00; the router is untouched.
    assert_eq!(section.discounts.len(), 1);
    assert_eq!(section.discounts[0].level, DiscountLevel::Item);
    assert_eq!(section.discounts[0].item, Some(ItemCode::new("fee")));
    assert_eq!(section.discounts[0].base.minor, 1000);
    assert_eq!(section.discounts[0].amount.minor, -100);
    // Section: 27.00 + 10.00 + 3.00 - 1.00 = 39.00.
    assert_eq!(section.total.minor, 3900);
    // Invoice level: -5.00 on 39.00 -> subtotal 34.00; 20 % exclusive = 6.80; gross 40.80.
    assert_eq!(invoice.discounts.len(), 1);
    assert_eq!(invoice.discounts[0].base.minor, 3900);
    assert_eq!(invoice.discounts[0].amount.money, eur(dec!(-5.00)));
    assert_eq!(invoice.totals.subtotal.minor, 3400);
    assert_eq!(invoice.totals.net.minor, 3400);
    assert_eq!(invoice.totals.tax.minor, 680);
    assert_eq!(invoice.totals.gross.minor, 4080);
    // The -5.00 is spread over the tax bases in proportion (telecom 9.00, equipment 3.00,
    // usage 27.00 of 39.00): 5 x 9/39 = 1.15, 5 x 3/39 = 0.38, 5 x 27/39 = 3.46 (largest
    // remainders: 1.1538 -> 1.15, 0.3846 -> 0.38, 3.4615 -> 3.46, sum 4.99, +0.01 to the
    // largest remainder 0.3846 -> 0.39).
    let shares: Vec<(&str, i64)> = invoice.discounts[0]
        .allocation
        .iter()
        .map(|s| (s.base.category.as_str(), s.amount.minor))
        .collect();
    assert_eq!(
        shares,
        [("equipment", -39), ("telecom", -115), ("usage", -346)]
    );
    // Tax lines per category: equipment (3.00 - 0.39) x 20 % = 0.522 -> 0.52;
    // telecom (9.00 - 1.15) x 20 % = 1.57; usage (27.00 - 3.46) x 20 % = 4.708 -> 4.71.
    let taxes: Vec<(&str, i64, i64)> = invoice
        .tax_lines
        .iter()
        .map(|t| (t.category.as_str(), t.base.minor, t.tax.minor))
        .collect();
    assert_eq!(
        taxes,
        [
            ("equipment", 261, 52),
            ("telecom", 785, 157),
            ("usage", 2354, 471)
        ]
    );
    // 0.52 + 1.57 + 4.71 = 6.80: the tax lines are the tax total.
}

#[test]
fn conditions_not_met_give_no_discount() {
    let mut input = base_input();
    let mut big_spender = discount("big", percent(dec!(50)), DiscountScope::Invoice);
    big_spender.min_amount = Some([(Currency::EUR, dec!(100.00))].into_iter().collect());
    let mut heavy_user = discount("heavy", percent(dec!(50)), DiscountScope::Subscription);
    heavy_user.min_usage = Some([(Currency::EUR, dec!(50.00))].into_iter().collect());
    let mut expired = discount("old", percent(dec!(50)), DiscountScope::Account);
    expired.valid_to = Some(day(2026, 11, 1));
    let mut future = discount("new", percent(dec!(50)), DiscountScope::Account);
    future.valid_from = Some(day(2026, 12, 1));
    input.discounts = vec![big_spender, heavy_user, expired, future];
    for id in ["big", "heavy", "old", "new"] {
        attach_to_account(&mut input, id);
    }
    let invoice = build_invoice(&input).unwrap();
    // 40.00 < 100.00, usage 27.00 < 50.00, validity outside November: no discount at all.
    assert!(invoice.sections[0].discounts.is_empty());
    assert!(invoice.discounts.is_empty());
    assert_eq!(invoice.totals.subtotal.minor, 4000);

    // Valid on one day of November is enough (no proration): the last day.
    let mut input = base_input();
    let mut last_day = discount("last", percent(dec!(50)), DiscountScope::Account);
    last_day.valid_from = Some(day(2026, 11, 30));
    input.discounts = vec![last_day];
    attach_to_account(&mut input, "last");
    // 50 % of 40.00 = -20.00.
    assert_eq!(build_invoice(&input).unwrap().totals.subtotal.minor, 2000);
}

#[test]
fn discounts_never_go_below_zero() {
    let mut input = base_input();
    input.discounts = vec![
        discount(
            "fee-free",
            fixed(dec!(15.00)),
            DiscountScope::Item {
                code: ItemCode::new("fee"),
            },
        ),
        discount("all-free", fixed(dec!(100.00)), DiscountScope::Invoice),
        discount("more", percent(dec!(10)), DiscountScope::Invoice),
    ];
    attach_to_subscription(&mut input, "fee-free");
    attach_to_account(&mut input, "all-free");
    attach_to_account(&mut input, "more");
    let invoice = build_invoice(&input).unwrap();
    // 15.00 off a 10.00 fee: capped at -10.00.
    assert_eq!(invoice.sections[0].discounts[0].amount.minor, -1000);
    // Section 30.00; 100.00 off the invoice: capped at -30.00; the 10 % then has nothing left.
    assert_eq!(invoice.discounts.len(), 1);
    assert_eq!(invoice.discounts[0].amount.minor, -3000);
    assert_eq!(invoice.totals.subtotal.minor, 0);
    assert_eq!(invoice.totals.tax.minor, 0);
    assert_eq!(invoice.totals.gross.minor, 0);
}

#[test]
fn subscription_and_account_levels_run_in_order() {
    let mut input = base_input();
    input.discounts = vec![
        discount("sub20", percent(dec!(20)), DiscountScope::Subscription),
        discount("acc10", percent(dec!(10)), DiscountScope::Account),
        discount(
            "prod",
            fixed(dec!(1.00)),
            DiscountScope::Product {
                code: "mobile-s".into(),
            },
        ),
    ];
    attach_to_account(&mut input, "acc10");
    attach_to_subscription(&mut input, "sub20");
    attach_to_subscription(&mut input, "prod");
    let invoice = build_invoice(&input).unwrap();
    let lines: Vec<(DiscountLevel, i64, i64)> = invoice.sections[0]
        .discounts
        .iter()
        .map(|d| (d.level, d.base.minor, d.amount.minor))
        .collect();
    // Item level first: product discount 1.00 off each of the fee (10.00) and router (3.00).
    // Subscription: 20 % of (9.00 + 2.00) = 2.20. Account: 10 % of (27.00 + 11.00 - 2.20) =
    // 10 % of 35.80 = 3.58. Section total 35.80 - 3.58 = 32.22.
    assert_eq!(
        lines,
        [
            (DiscountLevel::Item, 1000, -100),
            (DiscountLevel::Item, 300, -100),
            (DiscountLevel::Subscription, 1100, -220),
            (DiscountLevel::Account, 3580, -358),
        ]
    );
    assert_eq!(invoice.sections[0].total.minor, 3222);
    // Unknown discount ids are refused.
    attach_to_account(&mut input, "nope");
    assert_eq!(
        build_invoice(&input).unwrap_err().code(),
        "billing.unknown_discount"
    );
}

#[test]
fn exclusive_and_inclusive_taxes() {
    // Exclusive 20 % on 100.00 of usage: 20.00 tax, 120.00 gross.
    let payer = account("a", None, Responsibility::SelfPaying);
    let mut section = charges(payer, Vec::new());
    section.usage.push(usage("data", eur(dec!(100.00))));
    let mut exclusive = input("a", november(), vec![section]);
    let invoice = build_invoice(&exclusive).unwrap();
    assert_eq!(invoice.tax_lines.len(), 1);
    assert_eq!(invoice.tax_lines[0].tax.money, eur(dec!(20.00)));
    assert_eq!(invoice.tax_lines[0].net.minor, 10000);
    assert_eq!(
        (
            invoice.totals.net.minor,
            invoice.totals.tax.minor,
            invoice.totals.gross.minor
        ),
        (10000, 2000, 12000)
    );

    // Inclusive 20 % on 120.00: tax = 120.00 x 0.20 / 1.20 = 20.00; net 100.00; gross 120.00.
    exclusive.accounts[0].usage[0].amount = eur(dec!(120.00));
    let mut inclusive = exclusive;
    inclusive.tax_scheme = inclusive_scheme();
    let invoice = build_invoice(&inclusive).unwrap();
    let line = &invoice.tax_lines[0];
    assert!(line.inclusive);
    assert_eq!(
        (line.base.minor, line.net.minor, line.tax.minor),
        (12000, 10000, 2000)
    );
    assert_eq!(
        (
            invoice.totals.subtotal.minor,
            invoice.totals.net.minor,
            invoice.totals.tax.minor,
            invoice.totals.gross.minor
        ),
        (12000, 10000, 2000, 12000)
    );

    // Rounding once per tax line: three usage lines of 0.07 share one tax line (0.21):
    // 0.21 x 20 % = 0.042 -> 0.04 (rounding per usage line would give 3 x 0.014 -> 0.03).
    let payer = account("a", None, Responsibility::SelfPaying);
    let mut section = charges(payer, Vec::new());
    for service in ["sms", "mms", "voice"] {
        section.usage.push(usage(service, eur(dec!(0.07))));
    }
    let invoice = build_invoice(&input("a", november(), vec![section])).unwrap();
    assert_eq!(invoice.totals.tax.minor, 4);
}

#[test]
fn usage_at_charge_precision_is_rounded_once_on_the_invoice() {
    // 12.3456 rated at 4 decimals -> 12.35 on the invoice (half-up).
    let payer = account("a", None, Responsibility::SelfPaying);
    let mut section = charges(payer, Vec::new());
    section.usage.push(usage("voice", eur(dec!(12.3450))));
    let invoice = build_invoice(&input("a", november(), vec![section])).unwrap();
    assert_eq!(invoice.sections[0].usage[0].amount.minor, 1235);
}

#[test]
fn two_currencies_priced_from_their_own_price_lists() {
    // A USD account: the fee's USD price 12.00, 20 % US tax = 2.40.
    let mut usd = account("u", None, Responsibility::SelfPaying);
    usd.currency = Currency::USD;
    usd.tax_jurisdiction = "US".into();
    let sub = subscription("s1", "u", &["fee"], day(2026, 10, 1));
    let invoice = build_invoice(&input(
        "u",
        november(),
        vec![charges(usd.clone(), vec![sub])],
    ))
    .unwrap();
    assert_eq!(invoice.currency, Currency::USD);
    assert_eq!(
        invoice.sections[0].fees[0].amount.money,
        Money::new(dec!(12.00), Currency::USD)
    );
    assert_eq!(
        invoice.totals.gross.money,
        Money::new(dec!(14.40), Currency::USD)
    );

    // fee-adv has no USD price: billing.no_price_list.
    let sub = subscription("s1", "u", &["fee-adv"], day(2026, 10, 1));
    let err = build_invoice(&input(
        "u",
        november(),
        vec![charges(usd.clone(), vec![sub])],
    ))
    .unwrap_err();
    assert_eq!(err.code(), "billing.no_price_list");

    // EUR usage on a USD account: billing.currency_mismatch.
    let mut section = charges(usd.clone(), Vec::new());
    section.usage.push(usage("voice", eur(dec!(1.00))));
    let err = build_invoice(&input("u", november(), vec![section])).unwrap_err();
    assert_eq!(err.code(), "billing.currency_mismatch");

    // A USD location under an EUR payer (bypassing hierarchy validation): refused too.
    let hq = account("hq", None, Responsibility::SelfPaying);
    let mut site = account("site", Some("hq"), Responsibility::PaidByParent);
    site.currency = Currency::USD;
    let err = build_invoice(&input(
        "hq",
        november(),
        vec![charges(hq, vec![]), charges(site, vec![])],
    ))
    .unwrap_err();
    assert_eq!(err.code(), "billing.currency_mismatch");
}

#[test]
fn refusals_carry_their_codes() {
    // No tax rate for the jurisdiction: the worker dead-letters the account with this code.
    let mut input_de = base_input();
    input_de.accounts[0].account.tax_jurisdiction = "DE".into();
    assert_eq!(
        build_invoice(&input_de).unwrap_err().code(),
        "billing.no_tax_rate"
    );
    // A period that is not one of the cycle's.
    let mut shifted = base_input();
    shifted.period = Period::new(day(2026, 11, 2), day(2026, 12, 2)).unwrap();
    assert_eq!(
        build_invoice(&shifted).unwrap_err().code(),
        "billing.period_mismatch"
    );
    // The payer's cycle is not the one given.
    let mut other_cycle = base_input();
    other_cycle.accounts[0].account.bill_cycle = BillCycleId::new("weekly");
    assert_eq!(
        build_invoice(&other_cycle).unwrap_err().code(),
        "billing.unknown_cycle"
    );
    // An item the price list does not know.
    let mut unknown = base_input();
    unknown.accounts[0].subscriptions[0].charges[0].item = ItemCode::new("tv");
    assert_eq!(
        build_invoice(&unknown).unwrap_err().code(),
        "billing.unknown_item"
    );
    // The payer is not in the input.
    let mut missing = base_input();
    missing.payer = AccountId::new("zz");
    assert_eq!(
        build_invoice(&missing).unwrap_err().code(),
        "hierarchy.unknown_account"
    );
}

#[test]
fn invoices_are_deterministic_and_serializable() {
    let mut input = base_input();
    input.accounts[0].usage.push(usage("data", eur(dec!(3.00))));
    let a = build_invoice(&input).unwrap();
    input.accounts[0].usage.reverse();
    let b = build_invoice(&input).unwrap();
    assert_eq!(a, b, "usage order does not matter");
    let services: Vec<&str> = a.sections[0]
        .usage
        .iter()
        .map(|u| u.service.as_str())
        .collect();
    assert_eq!(services, ["data", "voice"]);
    let json = serde_json::to_string(&a).unwrap();
    let back: InvoiceDraft = serde_json::from_str(&json).unwrap();
    assert_eq!(back, a);
    assert!(json.contains(r#""minor":4300"#), "{json}");
    // Input round trip, and unknown fields refused.
    let text = serde_json::to_string(&input).unwrap();
    let parsed: InvoiceInput = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed, input);
    let bad = text.replacen("\"payer\"", "\"extra\":1,\"payer\"", 1);
    assert!(serde_json::from_str::<InvoiceInput>(&bad).is_err());
}
