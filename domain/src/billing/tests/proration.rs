//! Proration by days, timing, trials, suspension, one-off fees and the lifecycle.

use rust_decimal_macros::dec;

use super::*;

#[test]
fn acceptance_ten_euros_activated_on_day_16_of_a_30_day_month_costs_five() {
    // November 2026 has 30 days; active on 16..=30 = 15 days; 10.00 x 15 / 30 = 5.00.
    let sub = subscription("s1", "a", &["fee"], day(2026, 11, 16));
    let payer = account("a", None, Responsibility::SelfPaying);
    let invoice = build_invoice(&input("a", november(), vec![charges(payer, vec![sub])])).unwrap();
    let fee = &invoice.sections[0].fees[0];
    assert_eq!(fee.charged_days, 15);
    assert_eq!(fee.period_days, 30);
    assert_eq!(fee.proration, dec!(0.5));
    assert_eq!(fee.amount.money, eur(dec!(5.00)));
    assert_eq!(fee.amount.minor, 500);
    assert_eq!(fee.service_period, Some(november()));
    // The prorate function on its own: same rule.
    assert_eq!(prorate(eur(dec!(10.00)), 1, 15, 30).unwrap().minor, 500);
}

#[test]
fn deactivation_day_is_not_charged() {
    // Active since October; deactivated on 11 November: days 1..=10 = 10 of 30;
    // 10.00 x 10 / 30 = 3.333... -> 3.33 (half-up).
    let mut sub = subscription("s1", "a", &["fee"], day(2026, 10, 1));
    sub.transition(SubscriptionStatus::Deactivated, day(2026, 11, 11))
        .unwrap();
    assert_eq!(fee_minors(sub.clone(), november()), vec![333]);
    // December: nothing left to charge, so no line at all.
    let december = Period::new(day(2026, 12, 1), day(2027, 1, 1)).unwrap();
    assert_eq!(fee_minors(sub, december), Vec::<i64>::new());
}

#[test]
fn activated_and_deactivated_on_the_same_day_costs_nothing() {
    let mut sub = subscription("s1", "a", &["fee"], day(2026, 11, 16));
    sub.transition(SubscriptionStatus::Deactivated, day(2026, 11, 16))
        .unwrap();
    assert_eq!(fee_minors(sub, november()), Vec::<i64>::new());
}

#[test]
fn in_arrears_bills_the_period_just_ended() {
    // Active all of November: 30/30 x 10.00 = 10.00, for November.
    let sub = subscription("s1", "a", &["fee"], day(2026, 10, 20));
    let payer = account("a", None, Responsibility::SelfPaying);
    let invoice = build_invoice(&input("a", november(), vec![charges(payer, vec![sub])])).unwrap();
    let fees = &invoice.sections[0].fees;
    assert_eq!(fees.len(), 1);
    assert_eq!(fees[0].kind, FeeKind::Recurring);
    assert_eq!(fees[0].service_period, Some(november()));
    assert_eq!(fees[0].amount.minor, 1000);
}

#[test]
fn in_advance_bills_the_next_period_and_the_activation_remainder_first() {
    let december = Period::new(day(2026, 12, 1), day(2027, 1, 1)).unwrap();
    let january = Period::new(day(2027, 1, 1), day(2027, 2, 1)).unwrap();
    let sub = subscription("s1", "a", &["fee-adv"], day(2026, 11, 16));
    let payer = account("a", None, Responsibility::SelfPaying);
    let invoice = build_invoice(&input(
        "a",
        november(),
        vec![charges(payer.clone(), vec![sub.clone()])],
    ))
    .unwrap();
    let fees = &invoice.sections[0].fees;
    // Remainder of November: nothing was billed in advance for it (pending on 1 November);
    // 15 days x 10.00 / 30 = 5.00.
    assert_eq!(fees[0].kind, FeeKind::RecurringAdjustment);
    assert_eq!(fees[0].service_period, Some(november()));
    assert_eq!((fees[0].charged_days, fees[0].amount.minor), (15, 500));
    // December in advance: 31/31 x 10.00 = 10.00.
    assert_eq!(fees[1].kind, FeeKind::Recurring);
    assert_eq!(fees[1].service_period, Some(december));
    assert_eq!((fees[1].charged_days, fees[1].amount.minor), (31, 1000));
    assert_eq!(invoice.next_period, december);

    // December's invoice: December already billed in full and nothing changed -> only January.
    let invoice = build_invoice(&input(
        "a",
        december,
        vec![charges(payer.clone(), vec![sub.clone()])],
    ))
    .unwrap();
    let fees = &invoice.sections[0].fees;
    assert_eq!(fees.len(), 1);
    assert_eq!(fees[0].service_period, Some(january));
    assert_eq!(fees[0].amount.minor, 1000);

    // Deactivated on 11 December: December should have cost 10 days: 10.00 x 10 / 31 =
    // 3.2258 -> 3.23; 10.00 was billed, so a credit of 3.23 - 10.00 = -6.77; nothing for January.
    let mut ended = sub;
    ended
        .transition(SubscriptionStatus::Deactivated, day(2026, 12, 11))
        .unwrap();
    let invoice = build_invoice(&input("a", december, vec![charges(payer, vec![ended])])).unwrap();
    let fees = &invoice.sections[0].fees;
    assert_eq!(fees.len(), 1);
    assert_eq!(fees[0].kind, FeeKind::RecurringAdjustment);
    assert_eq!(
        (fees[0].charged_days, fees[0].amount.minor),
        (10 - 31, -677)
    );
    assert_eq!(invoice.totals.subtotal.minor, -677);
}

#[test]
fn free_trial_waives_the_first_days_prorated_the_same_way() {
    // 14-day trial from 16 November: trial days 16..=29; November charges only the 30th:
    // 10.00 x 1 / 30 = 0.333 -> 0.33.
    let mut sub = subscription("s1", "a", &["fee"], day(2026, 11, 16));
    sub.charges[0].trial_days = Some(14);
    assert_eq!(fee_minors(sub, november()), vec![33]);

    // Activated 25 November: trial 25 November ..= 8 December. November: 6 days, all trial ->
    // no line. December: 31 - 8 = 23 days; 10.00 x 23 / 31 = 7.419 -> 7.42.
    let mut sub = subscription("s1", "a", &["fee"], day(2026, 11, 25));
    sub.charges[0].trial_days = Some(14);
    assert_eq!(fee_minors(sub.clone(), november()), Vec::<i64>::new());
    let december = Period::new(day(2026, 12, 1), day(2027, 1, 1)).unwrap();
    assert_eq!(fee_minors(sub, december), vec![742]);
}

#[test]
fn suspended_days_are_charged_unless_the_item_says_otherwise() {
    // Active since October, suspended 11 November, resumed 21 November: 10 suspended days.
    let mut sub = subscription("s1", "a", &["fee", "router"], day(2026, 10, 1));
    sub.transition(SubscriptionStatus::Suspended, day(2026, 11, 11))
        .unwrap();
    sub.transition(SubscriptionStatus::Active, day(2026, 11, 21))
        .unwrap();
    // fee (default: suspended days charged): 30/30 x 10.00 = 10.00.
    // router rental (suspended days free): 20/30 x 3.00 = 2.00.
    assert_eq!(fee_minors(sub, november()), vec![1000, 200]);
}

#[test]
fn one_off_fees_are_billed_once_in_the_period_of_their_date() {
    // Setup 25.00 on activation (16 November) + fee 5.00 (see the acceptance test).
    let sub = subscription("s1", "a", &["setup", "fee"], day(2026, 11, 16));
    assert_eq!(fee_minors(sub.clone(), november()), vec![2500, 500]);
    let december = Period::new(day(2026, 12, 1), day(2027, 1, 1)).unwrap();
    // December: the fee only, 10.00.
    assert_eq!(fee_minors(sub, december), vec![1000]);
}

#[test]
fn quantity_and_charge_dates_limit_a_recurring_charge() {
    // Two routers rented from 21 November: 10 days; 3.00 x 2 x 10 / 30 = 2.00.
    let mut sub = subscription("s1", "a", &["router"], day(2026, 10, 1));
    sub.charges[0].quantity = 2;
    sub.charges[0].start = Some(day(2026, 11, 21));
    assert_eq!(fee_minors(sub.clone(), november()), vec![200]);
    // Returned on 26 November (end is exclusive): 21..=25 = 5 days; 3.00 x 2 x 5 / 30 = 1.00.
    sub.charges[0].end = Some(day(2026, 11, 26));
    assert_eq!(fee_minors(sub, november()), vec![100]);
}

#[test]
fn lifecycle_allows_only_its_transitions_and_keeps_history() {
    use SubscriptionStatus::*;
    let mut sub = Subscription::new(
        SubscriptionId::new("s1"),
        AccountId::new("a"),
        "mobile-s".into(),
        day(2026, 1, 1),
    );
    assert_eq!(sub.status(), Pending);
    let err = sub.transition(Suspended, day(2026, 1, 2)).unwrap_err();
    assert_eq!(err.code(), "subscription.illegal_transition");
    for (status, d) in [
        (Active, 2),
        (Suspended, 10),
        (Active, 12),
        (Deactivated, 20),
    ] {
        sub.transition(status, day(2026, 1, d)).unwrap();
    }
    assert_eq!(sub.history.len(), 5);
    assert_eq!(sub.status_on(day(2026, 1, 11)), Some(Suspended));
    assert_eq!(sub.status_on(day(2025, 12, 31)), None);
    assert_eq!(sub.first_activation(), Some(day(2026, 1, 2)));
    for to in [Active, Suspended, Pending, Deactivated] {
        let err = sub.transition(to, day(2026, 2, 1)).unwrap_err();
        assert_eq!(err.code(), "subscription.illegal_transition", "{to:?}");
    }
    let mut sub = subscription("s2", "a", &[], day(2026, 3, 10));
    let err = sub.transition(Suspended, day(2026, 3, 9)).unwrap_err();
    assert_eq!(err.code(), "subscription.backdated_transition");
    assert_eq!(
        sub.history.len(),
        2,
        "a refused transition leaves the history alone"
    );
    // Pending can be cancelled.
    let mut sub = Subscription::new(
        SubscriptionId::new("s3"),
        AccountId::new("a"),
        "p".into(),
        day(2026, 1, 1),
    );
    sub.transition(Deactivated, day(2026, 1, 5)).unwrap();
}
