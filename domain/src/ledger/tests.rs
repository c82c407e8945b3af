//! Ledger rules: never overspend, cumulative session charging, expiry, thresholds.

use jiff::Timestamp;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use smol_str::SmolStr;

use super::*;
use crate::catalogue::Catalogue;
use crate::money::{Currency, Money};
use crate::number::Number;
use crate::subscriber::SubscriberProfile;

const CATALOGUE: &str = r#"
[catalogue]
name = "ledger"
currency = "EUR"
[[services]]
id = "voice"
unit = "second"
[[services]]
id = "sms"
unit = "event"
[[plans]]
id = "p"
  [[plans.rules]]
  id = "voice"
  service = "voice"
  increments = "60/60"
  price = { rate = "0.60" }
  [[plans.rules]]
  id = "sms"
  service = "sms"
  price = { rate = "0.09" }
[[products]]
id = "prod"
plans = ["p"]
"#;

fn setup(balance: Decimal) -> (Catalogue, SubscriberProfile, Account) {
    let catalogue = Catalogue::from_toml(CATALOGUE, "t.toml", &mut |_| Err(String::new())).unwrap();
    let profile = SubscriberProfile {
        id: "s1".into(),
        products: vec![SmolStr::new("prod")],
        currency: Some(Currency::EUR),
        attributes: Default::default(),
        mode: Default::default(),
    };
    let mut account = Account::new("s1".into(), Currency::EUR, Mode::Prepaid);
    if balance > Decimal::ZERO {
        let e = account
            .top_up("initial", Money::new(balance, Currency::EUR), now())
            .unwrap();
        account.apply(&e, &Thresholds::default());
    }
    (catalogue, profile, account)
}

fn now() -> Timestamp {
    "2026-03-02T10:00:00Z".parse().unwrap()
}

fn voice() -> UsageSpec {
    UsageSpec {
        service: "voice".into(),
        direction: crate::cdr::Direction::Outbound,
        caller: Some(Number::from_digits("4930111").unwrap()),
        callee: Some(Number::from_digits("4915222").unwrap()),
        trunk: None,
        attributes: Default::default(),
        start: None,
    }
}

fn initial(session: &str, units: u64) -> SessionRequest {
    SessionRequest::Initial {
        session: session.into(),
        request: "1".into(),
        usage: voice(),
        requested_units: units,
    }
}

#[test]
fn a_hundred_sessions_of_0_60_on_10_00_get_exactly_16_grants() {
    let (cat, profile, mut account) = setup(dec!(10.00));
    let mut log = vec![];
    let mut granted = 0;
    for i in 0..100 {
        match account.session(
            &cat,
            &profile,
            &initial(&format!("s{i}"), 60),
            now(),
            300,
            3600,
        ) {
            Ok((effects, grant)) => {
                assert_eq!(grant.reserved.amount, dec!(0.60));
                log.extend(effects.entries.clone());
                account.apply(&effects, &Thresholds::default());
                granted += 1;
            }
            Err(refusal) => assert_eq!(refusal.code(), "balance.insufficient"),
        }
    }
    assert_eq!(granted, 16);
    assert_eq!(account.reserved, dec!(9.60));
    assert!(account.available() >= Decimal::ZERO);
    let mut all = vec![Entry {
        key: "topup:initial".into(),
        at: now(),
        kind: EntryKind::TopUp,
        amount: dec!(10.00),
        reserved: Decimal::ZERO,
        reference: "initial".into(),
    }];
    all.extend(log);
    account.check(&all).unwrap();
}

#[test]
fn updates_charge_the_growth_of_the_cumulative_price() {
    let (cat, profile, mut account) = setup(dec!(10.00));
    let (e, g) = account
        .session(&cat, &profile, &initial("call", 120), now(), 300, 3600)
        .unwrap();
    assert_eq!((g.granted_units, g.reserved.amount), (120, dec!(1.20)));
    account.apply(&e, &Thresholds::default());
    // 50 s used: the session costs 0.60 (one started minute); 60 more asked: 110 s would cost
    // 1.20, so 0.60 more is reserved.
    let update = SessionRequest::Update {
        session: "call".into(),
        request: "2".into(),
        used_units: 50,
        requested_units: 60,
    };
    let (e, g) = account
        .session(&cat, &profile, &update, now(), 300, 3600)
        .unwrap();
    assert_eq!(
        (g.charged.amount, g.granted_units, g.reserved.amount),
        (dec!(0.60), 60, dec!(0.60))
    );
    account.apply(&e, &Thresholds::default());
    assert_eq!(
        (account.balance, account.reserved),
        (dec!(9.40), dec!(0.60))
    );
    // Final 30 s: 80 s in all = 2 minutes = 1.20, so 0.60 more; nothing stays reserved.
    let end = SessionRequest::Terminate {
        session: "call".into(),
        request: "3".into(),
        used_units: 30,
    };
    let (e, g) = account
        .session(&cat, &profile, &end, now(), 300, 3600)
        .unwrap();
    assert_eq!(
        (g.charged.amount, g.session_charged.amount),
        (dec!(0.60), dec!(1.20))
    );
    account.apply(&e, &Thresholds::default());
    assert_eq!((account.balance, account.reserved), (dec!(8.80), dec!(0)));
    assert!(account.reservations.is_empty());
    // The session is gone: a late update is refused clearly.
    let late = SessionRequest::Update {
        session: "call".into(),
        request: "4".into(),
        used_units: 1,
        requested_units: 60,
    };
    assert_eq!(
        account
            .session(&cat, &profile, &late, now(), 300, 3600)
            .unwrap_err()
            .code(),
        "session.unknown"
    );
}

#[test]
fn overuse_and_duplicate_sessions_are_refused() {
    let (cat, profile, mut account) = setup(dec!(10.00));
    let (e, _) = account
        .session(&cat, &profile, &initial("call", 60), now(), 300, 3600)
        .unwrap();
    account.apply(&e, &Thresholds::default());
    assert_eq!(
        account
            .session(&cat, &profile, &initial("call", 60), now(), 300, 3600)
            .unwrap_err()
            .code(),
        "session.exists"
    );
    let over = SessionRequest::Terminate {
        session: "call".into(),
        request: "2".into(),
        used_units: 61,
    };
    assert_eq!(
        account
            .session(&cat, &profile, &over, now(), 300, 3600)
            .unwrap_err()
            .code(),
        "session.overuse"
    );
}

#[test]
fn partial_grant_when_the_balance_covers_only_part() {
    // 1.00 available at 0.60/min (60/60): one minute fits, two do not.
    let (cat, profile, account) = setup(dec!(1.00));
    let (_, g) = account
        .session(&cat, &profile, &initial("call", 600), now(), 300, 3600)
        .unwrap();
    assert_eq!((g.granted_units, g.reserved.amount), (60, dec!(0.60)));
}

#[test]
fn expired_reservations_release_their_money() {
    let (cat, profile, mut account) = setup(dec!(10.00));
    let (e, _) = account
        .session(&cat, &profile, &initial("call", 60), now(), 300, 3600)
        .unwrap();
    account.apply(&e, &Thresholds::default());
    assert_eq!(account.available(), dec!(9.40));
    let early = account.expire(Timestamp::from_second(now().as_second() + 299).unwrap());
    assert!(early.entries.is_empty());
    let later = account.expire(Timestamp::from_second(now().as_second() + 300).unwrap());
    account.apply(&later, &Thresholds::default());
    assert_eq!(
        (account.available(), account.reserved),
        (dec!(10.00), dec!(0))
    );
    assert!(account.reservations.is_empty());
}

#[test]
fn thresholds_suspend_and_a_top_up_resumes() {
    let thresholds = Thresholds {
        suspend_below: dec!(1.00),
        resume_at_or_above: dec!(2.00),
    };
    let (cat, profile, mut account) = setup(dec!(1.50));
    let sms = SessionRequest::Event {
        request: "e1".into(),
        usage: UsageSpec {
            service: "sms".into(),
            ..voice()
        },
        units: 1,
    };
    // 1.50 - 0.60 (one minute) = 0.90 < 1.00: suspended.
    let (e, _) = account
        .session(&cat, &profile, &initial("call", 60), now(), 300, 3600)
        .unwrap();
    account.apply(&e, &thresholds);
    let end = SessionRequest::Terminate {
        session: "call".into(),
        request: "2".into(),
        used_units: 60,
    };
    let (e, _) = account
        .session(&cat, &profile, &end, now(), 300, 3600)
        .unwrap();
    account.apply(&e, &thresholds);
    assert_eq!(
        (account.balance, account.status),
        (dec!(0.90), Status::Suspended)
    );
    assert_eq!(
        account
            .session(&cat, &profile, &initial("next", 60), now(), 300, 3600)
            .unwrap_err()
            .code(),
        "account.suspended"
    );
    assert_eq!(
        account
            .session(&cat, &profile, &sms, now(), 300, 3600)
            .unwrap_err()
            .code(),
        "account.suspended"
    );
    // 0.90 + 1.00 = 1.90 is still below the resume level of 2.00.
    let e = account
        .top_up("t1", Money::new(dec!(1.00), Currency::EUR), now())
        .unwrap();
    account.apply(&e, &thresholds);
    assert_eq!(account.status, Status::Suspended);
    let e = account
        .top_up("t2", Money::new(dec!(0.10), Currency::EUR), now())
        .unwrap();
    account.apply(&e, &thresholds);
    assert_eq!(account.status, Status::Active);
    assert!(
        account
            .session(&cat, &profile, &sms, now(), 300, 3600)
            .is_ok()
    );
    // Bad top-ups are refused.
    assert_eq!(
        account
            .top_up("t3", Money::new(dec!(-1), Currency::EUR), now())
            .unwrap_err()
            .code(),
        "request.invalid_amount"
    );
    assert_eq!(
        account
            .top_up("t4", Money::new(dec!(1), Currency::USD), now())
            .unwrap_err()
            .code(),
        "money.currency_mismatch"
    );
}

#[test]
fn accounts_round_trip_through_json() {
    let (cat, profile, mut account) = setup(dec!(10.00));
    let (e, _) = account
        .session(&cat, &profile, &initial("call", 60), now(), 300, 3600)
        .unwrap();
    account.apply(&e, &Thresholds::default());
    let json = serde_json::to_string(&account).unwrap();
    let back: Account = serde_json::from_str(&json).unwrap();
    assert_eq!(back, account);
    let refusal = Refusal::Suspended;
    assert_eq!(
        serde_json::to_value(&refusal).unwrap()["code"],
        "account.suspended"
    );
}

fn barring(reason: &str, key: &str) -> Barring {
    Barring {
        reason: reason.into(),
        since: now(),
        key: key.into(),
    }
}

fn sms(request: &str) -> SessionRequest {
    SessionRequest::Event {
        request: request.into(),
        usage: UsageSpec {
            service: "sms".into(),
            ..voice()
        },
        units: 1,
    }
}

#[test]
fn a_barred_account_refuses_new_usage_until_the_barring_is_cleared() {
    for mode in [Mode::Prepaid, Mode::Postpaid] {
        let (cat, profile, mut account) = setup(dec!(10.00));
        account.mode = mode;
        let e = account
            .set_barring(Some(barring(Barring::SUSPENDED, "k1")))
            .unwrap();
        assert!(e.entries.is_empty(), "a barring writes no ledger entry");
        account.apply(&e, &Thresholds::default());
        assert_eq!(account.barring, Some(barring(Barring::SUSPENDED, "k1")));
        assert_eq!(account.status, Status::Active, "the status is independent");
        for request in [initial("call", 60), sms("e1")] {
            let refused = account
                .session(&cat, &profile, &request, now(), 300, 3600)
                .unwrap_err();
            assert_eq!(refused.code(), "account.barred");
            assert_eq!(
                refused,
                Refusal::Barred {
                    reason: Barring::SUSPENDED.into()
                }
            );
            assert_eq!(
                refused.to_string(),
                "service barred by collections (dunning.suspended): pay the overdue invoices to resume"
            );
        }
        // Usage that happened is charged anyway.
        let cdr = crate::cdr::Cdr {
            id: crate::ids::CdrId::new("c1"),
            subscriber: "s1".into(),
            service: "voice".into(),
            direction: crate::cdr::Direction::Outbound,
            caller: None,
            callee: None,
            start: now(),
            units: Some(60),
            trunk: None,
            legs: Vec::new(),
            attributes: Default::default(),
        };
        let rating = crate::rating::rate(&cat, &profile, &cdr, &account.counters).unwrap();
        let e = account.charge(&rating, now()).unwrap();
        account.apply(&e, &Thresholds::default());
        assert_eq!(account.balance, dec!(9.40));
        // Barring again for the same reason changes nothing (the first key and time stay).
        let again = account
            .set_barring(Some(barring(Barring::SUSPENDED, "k2")))
            .unwrap();
        assert_eq!(again, Effects::default());
        // Cleared: new usage is allowed again; clearing twice changes nothing.
        let e = account.set_barring(None).unwrap();
        assert_eq!(e.barring, Some(BarringChange::Clear));
        account.apply(&e, &Thresholds::default());
        assert_eq!(account.barring, None);
        assert_eq!(account.set_barring(None).unwrap(), Effects::default());
        assert!(
            account
                .session(&cat, &profile, &initial("call", 60), now(), 300, 3600)
                .is_ok()
        );
        assert!(
            account
                .session(&cat, &profile, &sms("e2"), now(), 300, 3600)
                .is_ok()
        );
    }
}

#[test]
fn an_open_session_of_a_barred_account_is_charged_but_granted_nothing_more() {
    let (cat, profile, mut account) = setup(dec!(10.00));
    let (e, _) = account
        .session(&cat, &profile, &initial("call", 120), now(), 300, 3600)
        .unwrap();
    account.apply(&e, &Thresholds::default());
    let e = account
        .set_barring(Some(barring(Barring::SUSPENDED, "k1")))
        .unwrap();
    account.apply(&e, &Thresholds::default());
    let update = SessionRequest::Update {
        session: "call".into(),
        request: "2".into(),
        used_units: 50,
        requested_units: 60,
    };
    let (e, g) = account
        .session(&cat, &profile, &update, now(), 300, 3600)
        .unwrap();
    assert_eq!(
        (g.charged.amount, g.granted_units, g.reserved.amount),
        (dec!(0.60), 0, dec!(0))
    );
    account.apply(&e, &Thresholds::default());
    assert_eq!((account.balance, account.reserved), (dec!(9.40), dec!(0)));
    let end = SessionRequest::Terminate {
        session: "call".into(),
        request: "3".into(),
        used_units: 0,
    };
    let (e, g) = account
        .session(&cat, &profile, &end, now(), 300, 3600)
        .unwrap();
    assert_eq!(g.session_charged.amount, dec!(0.60));
    account.apply(&e, &Thresholds::default());
    assert!(account.reservations.is_empty());
}

#[test]
fn a_disconnection_is_for_good() {
    let (_, _, mut account) = setup(dec!(10.00));
    let e = account
        .set_barring(Some(barring(Barring::SUSPENDED, "k1")))
        .unwrap();
    account.apply(&e, &Thresholds::default());
    // A suspension escalates to a disconnection.
    let e = account
        .set_barring(Some(barring(Barring::DISCONNECTED, "k2")))
        .unwrap();
    account.apply(&e, &Thresholds::default());
    assert_eq!(account.barring, Some(barring(Barring::DISCONNECTED, "k2")));
    let refused = account.set_barring(None).unwrap_err();
    assert_eq!(refused.code(), "account.barred");
    assert_eq!(
        refused.to_string(),
        "service barred by collections (dunning.disconnected): the account is disconnected for good"
    );
    assert!(
        account
            .set_barring(Some(barring(Barring::SUSPENDED, "k3")))
            .is_err()
    );
    assert_eq!(
        account
            .set_barring(Some(barring(Barring::DISCONNECTED, "k4")))
            .unwrap(),
        Effects::default()
    );
}

#[test]
fn accounts_stored_before_barring_existed_still_load_and_barrings_round_trip() {
    let old = serde_json::json!({
        "subscriber": "s1",
        "currency": "EUR",
        "mode": "prepaid",
        "balance": "10.00",
        "reserved": "0",
        "status": "active",
        "reservations": {},
        "counters": [],
        "entry_count": 1
    });
    let account: Account = serde_json::from_value(old).unwrap();
    assert_eq!(account.barring, None);
    assert_eq!(account.balance, dec!(10.00));
    // An unbarred account is stored as before (no `barring` key).
    let json = serde_json::to_value(&account).unwrap();
    assert!(json.get("barring").is_none());
    let mut barred = account;
    barred.barring = Some(barring(Barring::SUSPENDED, "k1"));
    let back: Account = serde_json::from_str(&serde_json::to_string(&barred).unwrap()).unwrap();
    assert_eq!(back, barred);
    let refusal = Refusal::Barred {
        reason: Barring::SUSPENDED.into(),
    };
    let json = serde_json::to_value(&refusal).unwrap();
    assert_eq!(json["code"], "account.barred");
    assert_eq!(serde_json::from_value::<Refusal>(json).unwrap(), refusal);
    let effects = Effects {
        barring: Some(BarringChange::Clear),
        ..Effects::default()
    };
    let back: Effects = serde_json::from_str(&serde_json::to_string(&effects).unwrap()).unwrap();
    assert_eq!(back, effects);
}
