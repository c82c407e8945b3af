//! Hand-computed rating tests: every pricing feature with its expected amount worked out in
//! the comment above the assertion.

use jiff::Timestamp;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use smol_str::SmolStr;

use super::*;
use crate::attrs::Attributes;
use crate::catalogue::{Catalogue, volume_true_up};
use crate::cdr::{Cdr, Direction, Leg};
use crate::ids::{CdrId, SubscriberId};
use crate::number::Number;

const CATALOGUE: &str = r#"
[catalogue]
name = "test"
currency = "EUR"
timezone = "Europe/Berlin"
charge_precision = 4
rounding = "half-up"

[[services]]
id = "voice"
unit = "second"
[[services]]
id = "sms"
unit = "event"
[[services]]
id = "data"
unit = "byte"

[[zones]]
id = "de-fixed"
[[zones]]
id = "de-mobile"
[[zones]]
id = "ru-800"
[[zones]]
id = "moscow"
[[zones]]
id = "novosibirsk"

[[destinations]]
id = "world"
entries = { "49" = "de-fixed", "4915" = "de-mobile", "7800" = "ru-800" }

[[destinations]]
id = "ru-regions"
entries = { "7495" = "moscow", "7499" = "moscow", "7383" = "novosibirsk" }

[[schedules]]
id = "berlin"
timezone = "Europe/Berlin"
holidays = ["2026-12-25"]
bands = [
  { id = "peak", days = ["weekdays"], from = "08:00", to = "20:00" },
  { id = "offpeak", days = ["weekdays"], from = "20:00", to = "08:00" },
  { id = "weekend", days = ["weekend", "holiday"], from = "00:00", to = "24:00" },
]

[[schedules]]
id = "moscow"
timezone = "Europe/Moscow"
bands = [
  { id = "peak", days = ["weekdays"], from = "08:00", to = "20:00" },
  { id = "offpeak", days = ["weekdays"], from = "20:00", to = "08:00" },
  { id = "weekend", days = ["weekend"], from = "00:00", to = "24:00" },
]

[[allowances]]
id = "national-100"
service = "voice"
units = 6000
zones = ["de-fixed", "de-mobile"]

[[plans]]
id = "split"
destinations = "world"
schedule = "berlin"
band_mode = "split"
  [[plans.rules]]
  id = "mobile"
  service = "voice"
  direction = "outbound"
  zones = ["de-mobile"]
  increments = "60/60"
  price = { rates = { peak = "0.12", offpeak = "0.06", weekend = "0.04" } }
  [[plans.rules]]
  id = "trunk-b"
  service = "voice"
  trunks = ["carrier-b"]
  zones = ["de-fixed"]
  increments = "1/1"
  price = { rate = "0.03" }
  [[plans.rules]]
  id = "fixed-60"
  service = "voice"
  zones = ["de-fixed"]
  when = ["cdr.increments == 60/60"]
  increments = "60/60"
  price = { rate = "0.10" }
  [[plans.rules]]
  id = "fixed-30-6"
  service = "voice"
  zones = ["de-fixed"]
  when = ["cdr.increments == 30/6"]
  increments = "30/6"
  price = { rate = "0.10" }
  [[plans.rules]]
  id = "fixed"
  service = "voice"
  zones = ["de-fixed"]
  increments = "1/1"
  price = { rate = "0.10" }

[[plans]]
id = "start"
destinations = "world"
schedule = "berlin"
band_mode = "start"
  [[plans.rules]]
  id = "mobile"
  service = "voice"
  zones = ["de-mobile"]
  increments = "60/60"
  price = { rates = { peak = "0.12", offpeak = "0.06", weekend = "0.04" } }

[[plans]]
id = "moscow-time"
destinations = "world"
schedule = "moscow"
  [[plans.rules]]
  id = "mobile"
  service = "voice"
  zones = ["de-mobile"]
  increments = "60/60"
  price = { rates = { peak = "0.12", offpeak = "0.06", weekend = "0.04" } }

[[plans]]
id = "hotline"
destinations = "world"
caller_regions = "ru-regions"
  [[plans.rules]]
  id = "800-moscow"
  service = "voice"
  direction = "inbound"
  zones = ["ru-800"]
  caller_zones = ["moscow"]
  increments = "60/60"
  price = { rate = "0.50" }
  [[plans.rules]]
  id = "800-novosibirsk"
  service = "voice"
  direction = "inbound"
  zones = ["ru-800"]
  caller_zones = ["novosibirsk"]
  increments = "60/60"
  price = { rate = "0.90" }

[[plans]]
id = "tiers"
  [[plans.rules]]
  id = "graduated"
  service = "sms"
  when = ["cdr.pricing == graduated"]
  model = "tiered"
  counter = "sms-volume"
  price = { tiers = [{ up_to = 100, rate = "0.10" }, { up_to = 200, rate = "0.08" }, { rate = "0.05" }] }
  [[plans.rules]]
  id = "volume"
  service = "sms"
  model = "volume"
  counter = "sms-volume"
  price = { tiers = [{ up_to = 100, rate = "0.10" }, { up_to = 200, rate = "0.08" }, { rate = "0.05" }] }
  [[plans.rules]]
  id = "cumulated"
  service = "voice"
  model = "cumulated"
  increments = "60/60"
  price = { rate = "0.10" }

[[plans]]
id = "callcentre"
  [[plans.rules]]
  id = "ivr"
  service = "voice"
  legs = ["ivr"]
  increments = "1/1"
  price = { rate = "0.02" }
  [[plans.rules]]
  id = "ivr-included"
  service = "voice"
  legs = ["ivr"]
  price = { rate = "0" }
  [[plans.rules]]
  id = "agent-dedicated"
  service = "voice"
  legs = ["agent"]
  when = ["leg.dedicated == true"]
  price = { rate = "0" }
  [[plans.rules]]
  id = "agent-remote"
  service = "voice"
  legs = ["agent"]
  when = ["leg.operator_location in [nsk, ekb]"]
  increments = "60/60"
  price = { rate = "0.90" }
  [[plans.rules]]
  id = "agent"
  service = "voice"
  legs = ["agent"]
  increments = "60/60"
  price = { rate = "1.20" }
  [[plans.rules]]
  id = "post"
  service = "voice"
  legs = ["post"]
  increments = "30/6"
  price = { rate = "0.30" }
  [[plans.combinations]]
  id = "ivr-then-agent"
  legs = ["ivr", "agent"]
  leg_rules = { ivr = "ivr-included" }
  fee = "0.05"

[[plans]]
id = "extras"
rounding = "half-up"
  [[plans.rules]]
  id = "fees"
  service = "voice"
  when = ["cdr.case == fees"]
  increments = "1/1"
  price = { rate = "0.10", connection_fee = "0.05", minimum_charge = "0.20" }
  [[plans.rules]]
  id = "coefficients"
  service = "data"
  increments = "1000/1000"
  per = 1000000
  coefficients = [
    { when = ["cdr.qos == gold"], factor = "1.5" },
    { when = ["period.units >= 5000000"], factor = "0.8" },
  ]
  price = { rate = "0.20" }
  [[plans.rules]]
  id = "versions"
  service = "voice"
  when = ["cdr.case == versions"]
  increments = "60/60"
  prices = [
    { valid_to = "2026-04-01", rate = "0.10" },
    { valid_from = "2026-04-01", rate = "0.08" },
  ]
  [[plans.rules]]
  id = "later"
  service = "voice"
  when = ["cdr.case == later"]
  prices = [{ valid_from = "2027-01-01", rate = "0.10" }]
  [[plans.rules]]
  id = "rounding"
  service = "voice"
  increments = "1/1"
  price = { rate = "0.0025" }
  [[plans.discounts]]
  id = "gold-10"
  when = ["customer.segment == gold"]
  rules = ["fees"]
  percent = "10"

[[plans]]
id = "extras-even"
rounding = "half-even"
  [[plans.rules]]
  id = "rounding"
  service = "voice"
  increments = "1/1"
  price = { rate = "0.0025" }

[[plans]]
id = "usd"
currency = "USD"
  [[plans.rules]]
  id = "any"
  service = "voice"
  price = { rate = "0.01" }

[[products]]
id = "split"
plans = ["split"]
allowances = ["national-100"]
[[products]]
id = "split-no-free"
plans = ["split"]
partner_shares = [
  { partner = "carrier-x", percent = "30" },
  { partner = "content-y", amount = "0.002", per = 60, services = ["voice"] },
]
[[products]]
id = "start"
plans = ["start"]
[[products]]
id = "moscow-time"
plans = ["moscow-time"]
[[products]]
id = "hotline"
plans = ["hotline"]
[[products]]
id = "tiers"
plans = ["tiers"]
[[products]]
id = "callcentre"
plans = ["callcentre"]
[[products]]
id = "extras"
plans = ["extras"]
[[products]]
id = "extras-even"
plans = ["extras-even"]
[[products]]
id = "usd"
plans = ["usd"]
[[bundles]]
id = "office"
products = ["usd", "split-no-free"]
"#;

static CATALOGUE_LOADED: std::sync::LazyLock<Catalogue> = std::sync::LazyLock::new(|| {
    Catalogue::from_toml(CATALOGUE, "test.toml", &mut |_| Err("no files".into()))
        .unwrap_or_else(|p| panic!("{p}"))
});

fn catalogue() -> Catalogue {
    CATALOGUE_LOADED.clone()
}

fn profile(product: &str) -> SubscriberProfile {
    SubscriberProfile {
        id: SubscriberId::new("sub-1"),
        products: vec![SmolStr::new(product)],
        currency: None,
        attributes: Attributes::new(),
        mode: Default::default(),
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn voice(callee: &str, start: &str, seconds: u64) -> Cdr {
    Cdr {
        id: CdrId::new("c1"),
        subscriber: SubscriberId::new("sub-1"),
        service: SmolStr::new("voice"),
        direction: Direction::Outbound,
        caller: Some(Number::from_digits("4930111").unwrap()),
        callee: Some(Number::from_digits(callee).unwrap()),
        start: ts(start),
        units: Some(seconds),
        trunk: None,
        legs: Vec::new(),
        attributes: Attributes::new(),
    }
}

fn with_attr(mut cdr: Cdr, key: &str, value: &str) -> Cdr {
    cdr.attributes.set(key, value);
    cdr
}

fn charge(product: &str, cdr: &Cdr) -> Decimal {
    rate(&catalogue(), &profile(product), cdr, &Counters::new())
        .unwrap_or_else(|e| panic!("{e}"))
        .charge
        .amount
}

// Monday 2026-03-02, Berlin is UTC+1: 10:00Z = 11:00 local (peak).
const PEAK: &str = "2026-03-02T10:00:00Z";

#[test]
fn increments_60_60_30_6_and_1_1() {
    // 61 s at 0.10/min. 60/60: 120 s -> 0.20. 30/6: 30 + ceil(31/6)*6 = 66 s -> 0.11.
    // 1/1: 61 s -> 0.10 * 61 / 60 = 0.101666.. -> 0.1017 (half-up, 4 dp).
    let c = voice("49301234", PEAK, 61);
    assert_eq!(
        charge(
            "split-no-free",
            &with_attr(c.clone(), "increments", "60/60")
        ),
        dec!(0.2000)
    );
    assert_eq!(
        charge("split-no-free", &with_attr(c.clone(), "increments", "30/6")),
        dec!(0.1100)
    );
    assert_eq!(charge("split-no-free", &c), dec!(0.1017));
    // Zero-second (unanswered) calls cost nothing.
    assert_eq!(
        charge("split-no-free", &voice("49301234", PEAK, 0)),
        dec!(0.0000)
    );
    let inc = crate::catalogue::Increments { first: 30, next: 6 };
    assert_eq!(
        (
            inc.apply(1),
            inc.apply(30),
            inc.apply(31),
            inc.apply(36),
            inc.apply(37)
        ),
        (30, 30, 36, 36, 42)
    );
}

#[test]
fn band_split_versus_band_at_start() {
    // Monday 19:58 Berlin (18:58Z), 300 s, 60/60 -> 300 s.
    // Split: 120 s peak at 0.12/min = 0.24, 180 s offpeak at 0.06/min = 0.18 -> 0.42.
    // At start: 300 s all peak = 0.60.
    let c = voice("4915112345", "2026-03-02T18:58:00Z", 290);
    let split = rate(
        &catalogue(),
        &profile("split-no-free"),
        &c,
        &Counters::new(),
    )
    .unwrap();
    assert_eq!(split.charge.amount, dec!(0.4200));
    let parts: Vec<(&str, u64)> = split.explanation.legs[0]
        .parts
        .iter()
        .map(|p| (p.label.as_str(), p.units))
        .collect();
    assert_eq!(parts, vec![("peak", 120), ("offpeak", 180)]);
    assert_eq!(charge("start", &c), dec!(0.6000));
    // Holiday (Friday 2026-12-25) at noon: weekend band 0.04/min, 5 min = 0.20.
    assert_eq!(
        charge(
            "split-no-free",
            &voice("4915112345", "2026-12-25T11:00:00Z", 300)
        ),
        dec!(0.2000)
    );
}

#[test]
fn timezone_of_the_schedule_decides_the_band() {
    // 2026-03-02T05:30Z: 06:30 in Berlin (offpeak 0.06), 08:30 in Moscow (peak 0.12). 120 s.
    let c = voice("4915112345", "2026-03-02T05:30:00Z", 120);
    assert_eq!(charge("start", &c), dec!(0.1200));
    assert_eq!(charge("moscow-time", &c), dec!(0.2400));
}

#[test]
fn longest_prefix_picks_the_zone() {
    // 4915... is de-mobile (peak 0.12/min), 4930... is de-fixed (0.10/min), both 60 s.
    let mobile = rate(
        &catalogue(),
        &profile("split-no-free"),
        &voice("4915112345", PEAK, 60),
        &Counters::new(),
    )
    .unwrap();
    assert_eq!(mobile.charge.amount, dec!(0.1200));
    let dest = mobile.explanation.destination.unwrap();
    assert_eq!(
        (dest.zone.as_str(), dest.prefix.as_str()),
        ("de-mobile", "4915")
    );
    assert_eq!(
        charge("split-no-free", &voice("4930112345", PEAK, 60)),
        dec!(0.1000)
    );
}

#[test]
fn inbound_800_priced_by_caller_region() {
    // Inbound to 7800..., 90 s at 60/60 = 120 s: Moscow caller 0.50/min = 1.00, Novosibirsk 0.90/min = 1.80.
    let mut c = voice("78005553535", PEAK, 90);
    c.direction = Direction::Inbound;
    c.caller = Some(Number::from_digits("74951234567").unwrap());
    assert_eq!(charge("hotline", &c), dec!(1.0000));
    c.caller = Some(Number::from_digits("73831234567").unwrap());
    assert_eq!(charge("hotline", &c), dec!(1.8000));
    c.caller = Some(Number::from_digits("78121234567").unwrap());
    let err = rate(&catalogue(), &profile("hotline"), &c, &Counters::new()).unwrap_err();
    assert_eq!(err.code(), "rating.no_tariff");
}

#[test]
fn trunk_selects_its_rule() {
    // Via carrier-b, 1/1 at 0.03/min: 100 s = 0.05. Without a trunk, 0.10/min 1/1: 0.1667.
    let mut c = voice("4930112345", PEAK, 100);
    assert_eq!(charge("split-no-free", &c), dec!(0.1667));
    c.trunk = Some(SmolStr::new("carrier-b"));
    assert_eq!(charge("split-no-free", &c), dec!(0.0500));
}

fn sms(units: u64, pricing: &str) -> Cdr {
    let mut c = voice("4930112345", PEAK, units);
    c.service = SmolStr::new("sms");
    with_attr(c, "pricing", pricing)
}

#[test]
fn graduated_versus_volume_tiers() {
    let cat = catalogue();
    let mut counters = Counters::new();
    let period = "2026-03";
    counters.set(
        CounterKey {
            name: "tier:sms-volume".into(),
            period: period.into(),
        },
        CounterValue {
            units: 90,
            amount: Decimal::ZERO,
        },
    );
    // 90 counted, 20 more. Graduated: 10 x 0.10 + 10 x 0.08 = 1.80.
    let r = rate(&cat, &profile("tiers"), &sms(20, "graduated"), &counters).unwrap();
    assert_eq!(r.charge.amount, dec!(1.8000));
    assert_eq!(r.counter_updates[0].units, 20);
    // Volume: total reaches 110 -> tier 2, all 20 at 0.08 = 1.60 (provisional).
    let r = rate(&cat, &profile("tiers"), &sms(20, "volume"), &counters).unwrap();
    assert_eq!(r.charge.amount, dec!(1.6000));
    assert_eq!(r.counter_updates[0].amount, dec!(1.60));
    // True-up at bill time: the period ends at 250 units with 15.00 charged provisionally;
    // all 250 at tier 3 (0.05) = 12.50, so -2.50 is credited.
    let tiers = [
        crate::catalogue::Tier {
            up_to: Some(100),
            rate: dec!(0.10),
        },
        crate::catalogue::Tier {
            up_to: Some(200),
            rate: dec!(0.08),
        },
        crate::catalogue::Tier {
            up_to: None,
            rate: dec!(0.05),
        },
    ];
    assert_eq!(volume_true_up(&tiers, 1, 250, dec!(15.00)), dec!(-2.50));
}

#[test]
fn cumulated_rounds_the_period_total_not_each_call() {
    // Three calls of 20 s at 60/60 and 0.10/min. Per call that would be 3 x 0.10 = 0.30;
    // cumulated: the period total 60 s rounds to one minute: 0.10, then 0.00, 0.00.
    let cat = catalogue();
    let mut counters = Counters::new();
    let mut charges = Vec::new();
    for _ in 0..3 {
        let r = rate(
            &cat,
            &profile("tiers"),
            &voice("4930112345", PEAK, 20),
            &counters,
        )
        .unwrap();
        counters.apply(&r.counter_updates);
        charges.push(r.charge.amount);
    }
    assert_eq!(charges, vec![dec!(0.1000), dec!(0), dec!(0)]);
    // A fourth call of 1 s opens the second minute.
    let r = rate(
        &cat,
        &profile("tiers"),
        &voice("4930112345", PEAK, 1),
        &counters,
    )
    .unwrap();
    assert_eq!(r.charge.amount, dec!(0.1000));
}

#[test]
fn free_units_are_taken_first() {
    // 5,950 of 6,000 free seconds used; a 120 s call (60/60): 50 s free, 70 s billable at
    // 0.10/min (de-fixed, 1/1 rule) = 0.116666.. -> 0.1167.
    let cat = catalogue();
    let mut counters = Counters::new();
    counters.set(
        CounterKey {
            name: "allowance:national-100".into(),
            period: "2026-03".into(),
        },
        CounterValue {
            units: 5950,
            amount: Decimal::ZERO,
        },
    );
    let r = rate(
        &cat,
        &profile("split"),
        &voice("4930112345", PEAK, 120),
        &counters,
    )
    .unwrap();
    assert_eq!(r.charge.amount, dec!(0.1167));
    assert_eq!(r.free_units, 50);
    assert_eq!(r.explanation.legs[0].free[0].left, 0);
    // A fresh month: the whole call is free.
    let r = rate(
        &cat,
        &profile("split"),
        &voice("4930112345", "2026-04-01T10:00:00Z", 120),
        &counters,
    )
    .unwrap();
    assert_eq!((r.charge.amount, r.free_units), (dec!(0.0000), 120));
}

/// (leg kind, seconds, attributes).
type LegSpec<'a> = (&'a str, u64, &'a [(&'a str, &'a str)]);

fn callcentre(legs: &[LegSpec<'_>]) -> Cdr {
    let mut c = voice("78005553535", PEAK, 0);
    c.units = None;
    c.direction = Direction::Inbound;
    c.legs = legs
        .iter()
        .map(|(kind, units, attrs)| Leg {
            kind: SmolStr::new(kind),
            units: *units,
            attributes: attrs.iter().map(|(k, v)| (*k, *v)).collect(),
        })
        .collect();
    c
}

#[test]
fn multi_leg_with_dedicated_operator_and_combinations() {
    let cat = catalogue();
    // IVR 30 s + dedicated agent 125 s: combination ivr-then-agent prices the IVR leg with
    // ivr-included (0), the dedicated agent is included (0), combination fee 0.05 -> 0.05.
    let c = callcentre(&[
        ("ivr", 30, &[]),
        (
            "agent",
            125,
            &[("dedicated", "true"), ("operator_location", "msk")],
        ),
    ]);
    let r = rate(&cat, &profile("callcentre"), &c, &Counters::new()).unwrap();
    assert_eq!(r.charge.amount, dec!(0.0500));
    assert_eq!(
        r.explanation.combination.as_ref().unwrap().0,
        "ivr-then-agent"
    );
    // Same call with a shared (not dedicated) operator in Moscow: 125 s -> 180 s at 1.20/min = 3.60 + 0.05.
    let c = callcentre(&[
        ("ivr", 30, &[]),
        (
            "agent",
            125,
            &[("dedicated", "false"), ("operator_location", "msk")],
        ),
    ]);
    assert_eq!(
        rate(&cat, &profile("callcentre"), &c, &Counters::new())
            .unwrap()
            .charge
            .amount,
        dec!(3.6500)
    );
    // Operator in Novosibirsk: 180 s at 0.90/min = 2.70 + 0.05.
    let c = callcentre(&[
        ("ivr", 30, &[]),
        ("agent", 125, &[("operator_location", "nsk")]),
    ]);
    assert_eq!(
        rate(&cat, &profile("callcentre"), &c, &Counters::new())
            .unwrap()
            .charge
            .amount,
        dec!(2.7500)
    );
    // Three legs (no combination matches exactly): IVR 30 s at 0.02/min 1/1 = 0.01,
    // agent 60 s at 1.20 = 1.20, post 31 s at 30/6 = 36 s at 0.30/min = 0.18 -> 1.39.
    let c = callcentre(&[("ivr", 30, &[]), ("agent", 60, &[]), ("post", 31, &[])]);
    let r = rate(&cat, &profile("callcentre"), &c, &Counters::new()).unwrap();
    assert_eq!(r.charge.amount, dec!(1.3900));
    assert_eq!(r.explanation.legs.len(), 3);
    assert!(r.explanation.combination.is_none());
    // A leg kind no rule knows is refused, naming the leg.
    let c = callcentre(&[("ivr", 30, &[]), ("survey", 60, &[])]);
    let err = rate(&cat, &profile("callcentre"), &c, &Counters::new()).unwrap_err();
    assert!(err.to_string().contains("survey"), "{err}");
}

#[test]
fn partner_shares_percentage_and_absolute() {
    // Mobile call 19:58 Berlin, 290 s -> 0.42 (see band test). 30% = 0.126 -> 0.1260;
    // 0.002 per 60 s of the 300 charged seconds = 0.01.
    let c = voice("4915112345", "2026-03-02T18:58:00Z", 290);
    let r = rate(
        &catalogue(),
        &profile("split-no-free"),
        &c,
        &Counters::new(),
    )
    .unwrap();
    let shares: Vec<(&str, Decimal)> = r
        .partner_shares
        .iter()
        .map(|s| (s.partner.as_str(), s.amount.amount))
        .collect();
    assert_eq!(
        shares,
        vec![("carrier-x", dec!(0.1260)), ("content-y", dec!(0.0100))]
    );
}

#[test]
fn rounding_half_up_versus_half_even() {
    // 30 s at 0.0025/min (1/1) = 0.00125: half-up 0.0013, half-even 0.0012.
    let c = voice("4930112345", PEAK, 30);
    assert_eq!(charge("extras", &c), dec!(0.0013));
    assert_eq!(charge("extras-even", &c), dec!(0.0012));
    // 90 s = 0.00375: both give 0.0038 (7 is odd, so even rounds up too).
    let c = voice("4930112345", PEAK, 90);
    assert_eq!(charge("extras", &c), dec!(0.0038));
    assert_eq!(charge("extras-even", &c), dec!(0.0038));
}

#[test]
fn connection_fee_minimum_charge_and_discount() {
    let cat = catalogue();
    // 30 s at 0.10/min = 0.05, + 0.05 connection = 0.10, raised to the 0.20 minimum.
    let c = with_attr(voice("4930112345", PEAK, 30), "case", "fees");
    let r = rate(&cat, &profile("extras"), &c, &Counters::new()).unwrap();
    assert_eq!(r.charge.amount, dec!(0.2000));
    assert_eq!(
        r.lines.iter().map(|l| l.amount).sum::<Decimal>(),
        r.charge.amount
    );
    // 300 s = 0.50 + 0.05 = 0.55 (above minimum); gold segment: 10% off -> 0.495.
    let c = with_attr(voice("4930112345", PEAK, 300), "case", "fees");
    let mut gold = profile("extras");
    gold.attributes.set("segment", "gold");
    let r = rate(&cat, &gold, &c, &Counters::new()).unwrap();
    assert_eq!(r.charge.amount, dec!(0.4950));
    assert_eq!(r.explanation.discounts[0].1, dec!(0.055));
    // Unanswered: no connection fee, no minimum.
    assert_eq!(
        charge(
            "extras",
            &with_attr(voice("4930112345", PEAK, 0), "case", "fees")
        ),
        dec!(0)
    );
}

#[test]
fn coefficients_for_qos_and_volume() {
    let cat = catalogue();
    let mut c = voice("4930112345", PEAK, 2_500_000);
    c.service = SmolStr::new("data");
    // 2.5 MB at 0.20/MB = 0.50; gold QoS x1.5 = 0.75.
    assert_eq!(
        rate(&cat, &profile("extras"), &c, &Counters::new())
            .unwrap()
            .charge
            .amount,
        dec!(0.5000)
    );
    let gold = with_attr(c.clone(), "qos", "gold");
    assert_eq!(
        rate(&cat, &profile("extras"), &gold, &Counters::new())
            .unwrap()
            .charge
            .amount,
        dec!(0.7500)
    );
    // After 5 MB in the month, the volume coefficient 0.8 also applies: 0.50 x 1.5 x 0.8 = 0.60.
    let mut counters = Counters::new();
    counters.set(
        CounterKey {
            name: "tier:extras/coefficients".into(),
            period: "2026-03".into(),
        },
        CounterValue {
            units: 5_000_000,
            amount: Decimal::ZERO,
        },
    );
    assert_eq!(
        rate(&cat, &profile("extras"), &gold, &counters)
            .unwrap()
            .charge
            .amount,
        dec!(0.6000)
    );
}

#[test]
fn price_valid_at_the_record_time_is_used() {
    // 0.10/min until 2026-04-01 (Berlin), 0.08/min from then.
    let march = with_attr(
        voice("4930112345", "2026-03-31T21:59:59Z", 60),
        "case",
        "versions",
    );
    let april = with_attr(
        voice("4930112345", "2026-03-31T22:00:00Z", 60),
        "case",
        "versions",
    );
    assert_eq!(charge("extras", &march), dec!(0.1000));
    assert_eq!(charge("extras", &april), dec!(0.0800));
    let early = with_attr(voice("4930112345", PEAK, 60), "case", "later");
    let err = rate(&catalogue(), &profile("extras"), &early, &Counters::new()).unwrap_err();
    assert_eq!(err.code(), "rating.no_price");
}

#[test]
fn bundles_currency_and_errors() {
    let cat = catalogue();
    // The office bundle holds a USD plan first: an EUR account skips it.
    let mut p = profile("office");
    p.currency = Some(crate::money::Currency::EUR);
    let r = rate(&cat, &p, &voice("4930112345", PEAK, 60), &Counters::new()).unwrap();
    assert_eq!(
        (r.product.as_str(), r.charge.currency.code()),
        ("split-no-free", "EUR")
    );
    p.currency = Some(crate::money::Currency::USD);
    let r = rate(&cat, &p, &voice("4930112345", PEAK, 60), &Counters::new()).unwrap();
    assert_eq!((r.product.as_str(), r.charge.amount), ("usd", dec!(0.0100)));
    p.currency = Some(crate::money::Currency::from_code("GBP").unwrap());
    assert_eq!(
        rate(&cat, &p, &voice("4930112345", PEAK, 60), &Counters::new())
            .unwrap_err()
            .code(),
        "rating.currency_mismatch"
    );

    let mut c = voice("4930112345", PEAK, 60);
    c.service = SmolStr::new("fax");
    assert_eq!(
        rate(&cat, &profile("split"), &c, &Counters::new())
            .unwrap_err()
            .code(),
        "rating.unknown_service"
    );
    assert_eq!(
        rate(
            &cat,
            &profile("nope"),
            &voice("4930112345", PEAK, 60),
            &Counters::new()
        )
        .unwrap_err()
        .code(),
        "rating.unknown_product"
    );
    let mut c = voice("4930112345", PEAK, 60);
    c.units = None;
    assert_eq!(
        rate(&cat, &profile("split"), &c, &Counters::new())
            .unwrap_err()
            .code(),
        "cdr.missing_field"
    );
    c.units = Some(172_801);
    assert_eq!(
        rate(&cat, &profile("split"), &c, &Counters::new())
            .unwrap_err()
            .code(),
        "cdr.units_out_of_range"
    );
    // SMS without units counts one event.
    let mut s = sms(1, "graduated");
    s.units = None;
    assert_eq!(
        rate(&cat, &profile("tiers"), &s, &Counters::new())
            .unwrap()
            .charge
            .amount,
        dec!(0.1000)
    );
}

#[test]
fn explanation_reads_for_a_care_agent() {
    let c = voice("4915112345", "2026-03-02T18:58:00Z", 290);
    let r = rate(
        &catalogue(),
        &profile("split-no-free"),
        &c,
        &Counters::new(),
    )
    .unwrap();
    let text = r.explanation.to_string();
    for needle in [
        "plan split",
        "zone de-mobile (prefix 4915)",
        "rule mobile",
        "290 s at 60/60 -> 300 s",
        "peak 120 s x 0.12/60s",
        "offpeak 180 s x 0.06/60s",
        "half-up",
        "0.4200 EUR",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
}

/// Five graduated SMS of 40 units each, rated in order with counters carried along: 200 units,
/// crossing the first tier boundary (100) in the third record.
fn rated_sms_series(cat: &Catalogue) -> (Vec<rerate::ChargedRecord>, Counters) {
    let mut counters = Counters::new();
    let mut records = Vec::new();
    for i in 0..5 {
        let mut cdr = sms(40, "graduated");
        cdr.id = CdrId::new(format!("s{i}"));
        cdr.start = ts(PEAK) + jiff::SignedDuration::from_mins(i);
        let r = rate(cat, &profile("tiers"), &cdr, &counters).unwrap();
        counters.apply(&r.counter_updates);
        records.push(rerate::ChargedRecord {
            cdr,
            charge: r.charge,
            catalogue_version: 1,
            counter_updates: r.counter_updates.to_vec(),
        });
    }
    (records, counters)
}

#[test]
fn rerating_with_the_same_prices_changes_nothing_and_replays_the_counters() {
    let cat = catalogue();
    let (records, counters) = rated_sms_series(&cat);
    // 100 units at 0.10, 100 at 0.08: 10.00 + 8.00.
    let total: Decimal = records.iter().map(|r| r.charge.amount).sum();
    assert_eq!(total, dec!(18.0000));
    let timeline = crate::catalogue::Timeline::single(std::sync::Arc::new(cat));
    // Given in reverse order: rerating sorts by start and replays the tiers in that order.
    let mut reversed = records.clone();
    reversed.reverse();
    let result = rerate::rerate(&timeline, &profile("tiers"), &counters, reversed);
    assert!(result.changed.is_empty(), "{:?}", result.changed);
    assert_eq!(result.unchanged, 5);
    assert_eq!(result.counters, counters);
    // Only the last two: the first three keep the 120 units they counted.
    let result = rerate::rerate(
        &timeline,
        &profile("tiers"),
        &counters,
        records[3..].to_vec(),
    );
    assert!(result.changed.is_empty());
    assert_eq!(result.counters, counters);
}

#[test]
fn rerating_after_a_tier_price_change_reports_each_difference() {
    let cat = catalogue();
    let (records, counters) = rated_sms_series(&cat);
    // Version 2 from before the records: the second tier costs 0.06 instead of 0.08.
    let cheaper = CATALOGUE.replace(
        "{ up_to = 100, rate = \"0.10\" }, { up_to = 200, rate = \"0.08\" }",
        "{ up_to = 100, rate = \"0.10\" }, { up_to = 200, rate = \"0.06\" }",
    );
    let v2 = Catalogue::from_toml(&cheaper, "v2.toml", &mut |_| Err("no files".into())).unwrap();
    let timeline = crate::catalogue::Timeline::single(std::sync::Arc::new(cat)).with(
        2,
        ts("2026-03-01T00:00:00Z"),
        std::sync::Arc::new(v2),
    );
    let result = rerate::rerate(&timeline, &profile("tiers"), &counters, records);
    // Record 3 straddles the boundary (20 at 0.10, 20 at 0.08 -> 0.06); records 4 and 5 are
    // wholly in tier 2: 40 x 0.02 = 0.80 less each. Records 1 and 2 are in tier 1: unchanged.
    let credits: Vec<(String, Decimal)> = result
        .changed
        .iter()
        .map(|(l, _)| (l.cdr_id.to_string(), l.credit))
        .collect();
    assert_eq!(
        credits,
        vec![
            ("s2".to_string(), dec!(0.4000)),
            ("s3".to_string(), dec!(0.8000)),
            ("s4".to_string(), dec!(0.8000)),
        ]
    );
    assert_eq!(result.unchanged, 2);
    assert!(
        result
            .changed
            .iter()
            .all(|(l, _)| l.old_version == 1 && l.new_version == 2)
    );
    assert_eq!(result.counters, counters, "the same units are counted");
}

mod properties;
