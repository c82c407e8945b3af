//! Bill cycles and periods.

use super::*;

fn cycle(frequency: Frequency) -> BillCycle {
    BillCycle {
        id: BillCycleId::new("c"),
        frequency,
    }
}

fn period(a: Date, b: Date) -> Period {
    Period::new(a, b).unwrap()
}

#[test]
fn monthly_periods_run_from_bill_day_to_bill_day() {
    let c = monthly();
    let nov = c.period_containing(day(2026, 11, 16)).unwrap();
    assert_eq!(nov, november());
    assert_eq!(nov.days(), 30);
    // A run on 1 December bills November; so does one on 15 December.
    assert_eq!(c.period_ended_by(day(2026, 12, 1)).unwrap(), nov);
    assert_eq!(c.period_ended_by(day(2026, 12, 15)).unwrap(), nov);
    assert_eq!(
        c.next_period(&nov).unwrap(),
        period(day(2026, 12, 1), day(2027, 1, 1))
    );
    assert_eq!(
        c.previous_period(&nov).unwrap(),
        period(day(2026, 10, 1), day(2026, 11, 1))
    );
    assert!(!period_has_ended(&nov, day(2026, 11, 30)));
    assert!(period_has_ended(&nov, day(2026, 12, 1)));

    let mid = cycle(Frequency::Monthly {
        bill_day: BillDay::Day(15),
    });
    // 10 November is before the 15th: the period started on 15 October (31 days).
    let p = mid.period_containing(day(2026, 11, 10)).unwrap();
    assert_eq!(p, period(day(2026, 10, 15), day(2026, 11, 15)));
    assert_eq!(p.days(), 31);
}

#[test]
fn last_day_of_month_cycles_follow_month_lengths() {
    let c = cycle(Frequency::Monthly {
        bill_day: BillDay::Last,
    });
    // 2026 is not a leap year: February ends on the 28th.
    let p = c.period_containing(day(2026, 2, 27)).unwrap();
    assert_eq!(p, period(day(2026, 1, 31), day(2026, 2, 28)));
    assert_eq!(p.days(), 28);
    let p = c.period_containing(day(2026, 2, 28)).unwrap();
    assert_eq!(p, period(day(2026, 2, 28), day(2026, 3, 31)));
    assert_eq!(p.days(), 31);
}

#[test]
fn weekly_quarterly_and_annual_periods() {
    // 18 November 2026 is a Wednesday; periods start on Mondays: [16 Nov, 23 Nov).
    let weekly = cycle(Frequency::Weekly {
        weekday: BillWeekday::Monday,
    });
    let p = weekly.period_containing(day(2026, 11, 18)).unwrap();
    assert_eq!(p, period(day(2026, 11, 16), day(2026, 11, 23)));
    assert_eq!(weekly.period_containing(day(2026, 11, 16)).unwrap(), p);
    assert_eq!(p.days(), 7);

    // Calendar quarters: Q4 2026 = 1 Oct .. 31 Dec = 31 + 30 + 31 = 92 days.
    let quarterly = cycle(Frequency::Quarterly {
        bill_day: BillDay::Day(1),
        first_month: 1,
    });
    let p = quarterly.period_containing(day(2026, 11, 16)).unwrap();
    assert_eq!(p, period(day(2026, 10, 1), day(2027, 1, 1)));
    assert_eq!(p.days(), 92);
    // Fiscal quarters starting in February: Nov, Dec, Jan = 30 + 31 + 31 = 92 days.
    let fiscal = cycle(Frequency::Quarterly {
        bill_day: BillDay::Day(1),
        first_month: 2,
    });
    let p = fiscal.period_containing(day(2026, 11, 16)).unwrap();
    assert_eq!(p, period(day(2026, 11, 1), day(2027, 2, 1)));

    // Annual from 1 April: 1 March 2026 is in [2025-04-01, 2026-04-01) (365 days).
    let annual = cycle(Frequency::Annual {
        bill_day: BillDay::Day(1),
        month: 4,
    });
    let p = annual.period_containing(day(2026, 3, 1)).unwrap();
    assert_eq!(p, period(day(2025, 4, 1), day(2026, 4, 1)));
    assert_eq!(p.days(), 365);
}

#[test]
fn periods_are_parsed_from_keys_or_dates_and_checked_against_the_cycle() {
    let key = |k: &str| PeriodSpec::Key(k.to_string());
    let c = monthly();
    let oct = period(day(2026, 10, 1), day(2026, 11, 1));
    assert_eq!(c.resolve_period(&key("2026-10")).unwrap(), oct);
    assert_eq!(c.resolve_period(&PeriodSpec::Range(oct)).unwrap(), oct);
    // Explicit dates that are not one of the cycle's periods.
    let off = period(day(2026, 10, 2), day(2026, 11, 2));
    assert_eq!(
        c.resolve_period(&PeriodSpec::Range(off))
            .unwrap_err()
            .code(),
        "billing.period_mismatch"
    );
    for bad in [
        "2026-13", "2026-1", "26-10", "2026-Q4", "2026-W42", "2026", "soon",
    ] {
        assert_eq!(
            c.resolve_period(&key(bad)).unwrap_err().code(),
            "billing.period_mismatch",
            "{bad}"
        );
    }
    let quarterly = cycle(Frequency::Quarterly {
        bill_day: BillDay::Day(1),
        first_month: 1,
    });
    let q4 = period(day(2026, 10, 1), day(2027, 1, 1));
    assert_eq!(quarterly.resolve_period(&key("2026-Q4")).unwrap(), q4);
    assert_eq!(quarterly.resolve_period(&key("2026-10")).unwrap(), q4);
    assert_eq!(
        quarterly
            .resolve_period(&key("2026-11"))
            .unwrap_err()
            .code(),
        "billing.period_mismatch"
    );
    let weekly = cycle(Frequency::Weekly {
        weekday: BillWeekday::Monday,
    });
    // ISO week 42 of 2026 starts on Monday 12 October.
    assert_eq!(
        weekly.resolve_period(&key("2026-W42")).unwrap(),
        period(day(2026, 10, 12), day(2026, 10, 19))
    );
    assert_eq!(
        weekly.resolve_period(&key("2026-10")).unwrap_err().code(),
        "billing.period_mismatch"
    );
    // JSON forms.
    let spec: PeriodSpec = serde_json::from_str(r#""2026-10""#).unwrap();
    assert_eq!(c.resolve_period(&spec).unwrap(), oct);
    let spec: PeriodSpec =
        serde_json::from_str(r#"{"start":"2026-10-01","end":"2026-11-01"}"#).unwrap();
    assert_eq!(c.resolve_period(&spec).unwrap(), oct);
}

#[test]
fn only_ended_periods_are_billable_and_cycles_must_exist() {
    let c = monthly();
    let key = PeriodSpec::Key("2026-11".to_string());
    let err = c.billable_period(&key, day(2026, 11, 30)).unwrap_err();
    assert_eq!(err.code(), "billing.period_not_ended");
    assert_eq!(
        c.billable_period(&key, day(2026, 12, 1)).unwrap(),
        november()
    );

    let cycles = [monthly()];
    assert!(find_cycle(&cycles, &BillCycleId::new("monthly-1")).is_ok());
    let err = find_cycle(&cycles, &BillCycleId::new("weekly-mon")).unwrap_err();
    assert_eq!(err.code(), "billing.unknown_cycle");
}

#[test]
fn cycles_round_trip_through_json_and_refuse_bad_days() {
    let json = r#"{"id":"m15","frequency":{"monthly":{"bill_day":15}}}"#;
    let c: BillCycle = serde_json::from_str(json).unwrap();
    assert_eq!(serde_json::to_string(&c).unwrap(), json);
    let last: BillCycle =
        serde_json::from_str(r#"{"id":"ml","frequency":{"monthly":{"bill_day":"last"}}}"#).unwrap();
    assert_eq!(
        last.frequency,
        Frequency::Monthly {
            bill_day: BillDay::Last
        }
    );
    let weekly: BillCycle =
        serde_json::from_str(r#"{"id":"w","frequency":{"weekly":{"weekday":"friday"}}}"#).unwrap();
    assert!(weekly.validate().is_ok());
    for bad in [
        r#"{"id":"x","frequency":{"monthly":{"bill_day":29}}}"#,
        r#"{"id":"x","frequency":{"monthly":{"bill_day":"first"}}}"#,
        r#"{"id":"x","frequency":{"monthly":{"bill_day":1,"extra":1}}}"#,
        r#"{"id":"x","frequency":{"daily":{}}}"#,
    ] {
        assert!(serde_json::from_str::<BillCycle>(bad).is_err(), "{bad}");
    }
    let c = cycle(Frequency::Annual {
        bill_day: BillDay::Day(1),
        month: 13,
    });
    assert_eq!(c.validate().unwrap_err().code(), "billing.bad_cycle");
    assert_eq!(
        c.period_containing(day(2026, 1, 1)).unwrap_err().code(),
        "billing.bad_cycle"
    );
}
