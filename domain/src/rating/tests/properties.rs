//! Property tests: rating never panics, exactness of splits and tiers.

use jiff::Timestamp;
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use smol_str::SmolStr;

use super::*;

fn arbitrary_cdr() -> impl Strategy<Value = Cdr> {
    let services = prop_oneof![Just("voice"), Just("sms"), Just("data"), Just("fax")];
    let products = prop_oneof![
        Just("split"),
        Just("split-no-free"),
        Just("start"),
        Just("hotline"),
        Just("tiers"),
        Just("callcentre"),
        Just("extras")
    ];
    (
        services,
        products,
        proptest::option::of(0u64..400_000),
        "[0-9]{1,15}",
        "[0-9]{1,15}",
        -2_000_000_000i64..4_000_000_000i64,
        any::<bool>(),
        proptest::collection::vec(
            (
                prop_oneof![Just("ivr"), Just("agent"), Just("post"), Just("x")],
                0u64..100_000,
                any::<bool>(),
            ),
            0..4,
        ),
        proptest::option::of(prop_oneof![Just("carrier-b"), Just("other")]),
    )
        .prop_map(
            |(service, product, units, caller, callee, secs, inbound, legs, trunk)| {
                let mut c = voice("1", "2026-01-01T00:00:00Z", 0);
                c.service = SmolStr::new(service);
                c.subscriber = SubscriberId::new(product);
                c.units = units;
                c.caller = Some(Number::from_digits(&caller).unwrap());
                c.callee = Some(Number::from_digits(&callee).unwrap());
                c.start = Timestamp::from_second(secs).unwrap();
                c.direction = if inbound {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                };
                c.trunk = trunk.map(SmolStr::new);
                c.legs = legs
                    .into_iter()
                    .map(|(k, u, d)| Leg {
                        kind: SmolStr::new(k),
                        units: u,
                        attributes: [("dedicated", if d { "true" } else { "false" })]
                            .into_iter()
                            .collect(),
                    })
                    .collect();
                c
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn rating_never_panics_and_lines_sum_to_the_charge(cdr in arbitrary_cdr()) {
        let cat = &*CATALOGUE_LOADED;
        let p = profile(cdr.subscriber.as_str());
        let mut counters = Counters::new();
        match rate(cat, &p, &cdr, &counters) {
            Ok(r) => {
                prop_assert_eq!(r.lines.iter().map(|l| l.amount).sum::<Decimal>(), r.charge.amount);
                prop_assert!(r.charge.amount >= Decimal::ZERO);
                prop_assert_eq!(r.charge.amount.scale(), 4);
                counters.apply(&r.counter_updates);
            }
            Err(e) => prop_assert!(e.code().starts_with("rating.") || e.code().starts_with("cdr.")),
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn splitting_at_bands_with_equal_rates_equals_the_unsplit_charge(
        secs in 1_700_000_000i64..1_900_000_000i64,
        seconds in 1u64..172_800,
        rate_thousandths in 0i64..100_000,
    ) {
        // A plan whose three bands all cost the same: the split charge equals one rate on the
        // whole duration, exactly, wherever the call starts (DST days included).
        let r = Decimal::new(rate_thousandths, 3);
        let text = CATALOGUE.replace(
            r#"price = { rates = { peak = "0.12", offpeak = "0.06", weekend = "0.04" } }"#,
            &format!(r#"price = {{ rates = {{ peak = "{r}", offpeak = "{r}", weekend = "{r}" }} }}"#),
        );
        let cat = Catalogue::from_toml(&text, "t.toml", &mut |_| Err(String::new())).unwrap();
        let mut c = voice("4915112345", PEAK, seconds);
        c.start = Timestamp::from_second(secs).unwrap();
        let split = rate(&cat, &profile("split-no-free"), &c, &Counters::new()).unwrap();
        let start = rate(&cat, &profile("start"), &c, &Counters::new()).unwrap();
        let charged = crate::catalogue::Increments { first: 60, next: 60 }.apply(seconds);
        prop_assert_eq!(split.explanation.exact, r * Decimal::from(charged) / Decimal::from(60));
        prop_assert_eq!(split.charge, start.charge);
        prop_assert_eq!(split.explanation.legs[0].parts.iter().map(|p| p.units).sum::<u64>(), charged);
    }

    #[test]
    fn graduated_tiers_over_many_records_equal_the_tiers_of_the_total(sizes in proptest::collection::vec(1u64..80, 1..20)) {
        // Exact money: the sum of per-record graduated charges equals pricing the total at once.
        let cat = catalogue();
        let mut counters = Counters::new();
        let mut sum = Decimal::ZERO;
        for n in &sizes {
            let r = rate(&cat, &profile("tiers"), &sms(*n, "graduated"), &counters).unwrap();
            counters.apply(&r.counter_updates);
            sum += r.explanation.exact;
        }
        let total: u64 = sizes.iter().sum();
        let expected = Decimal::from(total.min(100)) * dec!(0.10)
            + Decimal::from(total.clamp(100, 200) - 100) * dec!(0.08)
            + Decimal::from(total.max(200) - 200) * dec!(0.05);
        prop_assert_eq!(sum, expected);
    }
}
