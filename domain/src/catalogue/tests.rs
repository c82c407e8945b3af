//! Loading tests: a broken catalogue reports every problem with its line and key.

use super::*;

fn load(text: &str) -> Result<Catalogue, Problems> {
    Catalogue::from_toml(text, "cat.toml", &mut |path| match path {
        "prefixes.csv" => {
            Ok("prefix,zone\n49,de\n4915,de-mobile\n4916,nowhere\nabc,de\n49,de\n".to_string())
        }
        other => Err(format!("no such file {other}")),
    })
}

#[test]
fn every_problem_is_listed_with_line_and_key() {
    let text = r#"
[catalogue]
name = "broken"
currency = "EUR"
timezone = "Mars/Olympus"

[[services]]
id = "voice"
unit = "second"
[[services]]
id = "voice"
unit = "second"

[[zones]]
id = "de"
[[zones]]
id = "de-mobile"

[[destinations]]
id = "world"
file = "prefixes.csv"

[[schedules]]
id = "gappy"
bands = [{ id = "day", days = ["all"], from = "08:00", to = "20:00" }]

[[schedules]]
id = "ok"
bands = [{ id = "day", days = ["all"], from = "08:00", to = "20:00" }, { id = "night", days = ["all"], from = "20:00", to = "08:00" }]

[[plans]]
id = "p"
destinations = "world"
schedule = "ok"
  [[plans.rules]]
  id = "r1"
  service = "voice"
  zones = ["de", "atlantis"]
  increments = "60/0"
  when = ["customer.type"]
  price = { rate = "0.10" }
  [[plans.rules]]
  id = "r4"
  service = "voice"
  price = { rate = 0.10 }
  [[plans.rules]]
  id = "r2"
  service = "sms"
  price = { rates = { night = "0.1", dusk = "0.2" } }
  [[plans.rules]]
  id = "r3"
  service = "voice"
  model = "tiered"
  price = { tiers = [{ rate = "0.1" }, { up_to = 10, rate = "0.2" }] }

[[products]]
id = "prod"
plans = ["p", "missing-plan"]
partner_shares = [{ partner = "a", percent = "60" }, { partner = "b", percent = "50" }]
"#;
    let problems = load(text).unwrap_err();
    let rendered = problems.to_string();
    let expect = [
        ("cat.toml:5: catalogue.timezone", "unknown timezone"),
        ("cat.toml:11: services[1].id", "duplicate service id"),
        (
            "prefixes.csv:4: destinations[0]",
            "unknown zone \"nowhere\"",
        ),
        ("prefixes.csv:5: destinations[0]", "must be 1 to 15 digits"),
        ("prefixes.csv:6: destinations[0]", "duplicate prefix 49"),
        ("schedules[0].bands", "mon: no band covers 00:00-08:00"),
        ("plans[0].rules[0].zones[1]", "unknown zone \"atlantis\""),
        ("plans[0].rules[0].increments", "not first/next"),
        ("plans[0].rules[0].when[0]", "no operator"),
        ("plans[0].rules[1].price.rate", "is a float"),
        ("plans[0].rules[2].service", "unknown service \"sms\""),
        (
            "plans[0].rules[2].price.rates.dusk",
            "not in the plan's schedule",
        ),
        ("plans[0].rules[2].price.rates", "no rate for band \"day\""),
        (
            "plans[0].rules[3].price.tiers[0]",
            "only the last tier may omit up_to",
        ),
        (
            "plans[0].rules[3].price.tiers[1].up_to",
            "the last tier must be open",
        ),
        ("products[0].plans[1]", "unknown plan \"missing-plan\""),
        ("products[0].partner_shares", "add up to 110%"),
    ];
    for (location, message) in expect {
        assert!(
            problems
                .0
                .iter()
                .any(|p| p.to_string().contains(location) && p.message.contains(message)),
            "missing {location}: {message} in\n{rendered}"
        );
    }
    // Lines point at the offending item.
    let zone = problems
        .0
        .iter()
        .find(|p| p.key == "plans[0].rules[0].zones[1]")
        .unwrap();
    assert_eq!(zone.line, Some(38), "{rendered}");
}

#[test]
fn syntax_errors_and_unknown_keys_are_reported() {
    let err =
        load("[catalogue]\nname = \"x\"\ncurrency = \"EUR\"\nthis is not toml\n").unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].line, Some(4), "{err}");
    let err = load(
        "[catalogue]\nname = \"x\"\ncurrency = \"EUR\"\ncolour = \"red\"\n[[plan]]\nid = \"x\"\n",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unknown field `colour`"), "{text}");
    assert!(text.contains("cat.toml:5: plan: unknown section"), "{text}");
    let err = load("[[zones]]\nid = \"a\"\n").unwrap_err();
    assert!(
        err.to_string().contains("missing [catalogue] section"),
        "{err}"
    );
}

#[test]
fn overlapping_price_versions_are_refused() {
    let text = r#"
[catalogue]
name = "v"
currency = "EUR"
[[services]]
id = "voice"
unit = "second"
[[plans]]
id = "p"
  [[plans.rules]]
  id = "r"
  service = "voice"
  prices = [
    { valid_from = "2026-01-01", valid_to = "2026-05-01", rate = "0.1" },
    { valid_from = "2026-04-01", rate = "0.2" },
  ]
"#;
    let err = load(text).unwrap_err();
    assert!(err.to_string().contains("price versions overlap"), "{err}");
    let fixed = text.replace("2026-05-01", "2026-04-01");
    let cat = load(&fixed).unwrap();
    assert_eq!(cat.plans[0].rules[0].prices.len(), 2);
}
