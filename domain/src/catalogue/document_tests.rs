//! Document tests: the sample catalogue survives TOML -> JSON -> TOML and rates the same; item
//! edits; errors name their key path; prefix tables are counted and checked.

use serde_json::json;
use smol_str::SmolStr;

use super::*;
use crate::attrs::Attributes;
use crate::cdr::{Cdr, Direction};
use crate::ids::{CdrId, SubscriberId};
use crate::number::Number;
use crate::rating::{Counters, rate};
use crate::subscriber::SubscriberProfile;

const SAMPLE: &str = include_str!("../../../examples/catalogue.toml");
const PREFIXES: &str = include_str!("../../../examples/prefixes.csv");

fn tables() -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([("prefixes.csv".to_string(), PREFIXES.as_bytes().to_vec())])
}

fn direct() -> Catalogue {
    Catalogue::from_toml(SAMPLE, "catalogue.toml", &mut |file| match file {
        "prefixes.csv" => Ok(PREFIXES.to_string()),
        other => Err(format!("no {other}")),
    })
    .unwrap_or_else(|p| panic!("{p}"))
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

fn voice(callee: &str, start: &str, seconds: u64) -> Cdr {
    Cdr {
        id: CdrId::new("c1"),
        subscriber: SubscriberId::new("sub-1"),
        service: SmolStr::new("voice"),
        direction: Direction::Outbound,
        caller: Some(Number::from_digits("4930111").unwrap()),
        callee: Some(Number::from_digits(callee).unwrap()),
        start: start.parse().unwrap(),
        units: Some(seconds),
        trunk: None,
        legs: Vec::new(),
        attributes: Attributes::new(),
    }
}

fn charges(cat: &Catalogue) -> Vec<String> {
    let cdrs = [
        ("consumer", voice("4915112345", "2026-03-02T10:00:00Z", 95)),
        ("consumer", voice("33140000000", "2026-03-02T21:00:00Z", 47)),
        ("business", voice("4930999999", "2026-03-07T12:00:00Z", 61)),
        ("consumer", voice("8816000000", "2026-03-02T10:00:00Z", 20)),
    ];
    cdrs.iter()
        .map(|(product, cdr)| {
            let r = rate(cat, &profile(product), cdr, &Counters::new())
                .unwrap_or_else(|e| panic!("{e}"));
            format!("{} {} {}", r.plan, r.charge, r.explanation)
        })
        .collect()
}

#[test]
fn the_sample_catalogue_round_trips_and_rates_the_same() {
    let doc = from_toml(SAMPLE).unwrap();
    assert_eq!(doc["catalogue"]["currency"], "EUR");
    assert_eq!(doc["plans"].as_array().unwrap().len(), 3);
    let text = to_toml(&doc).unwrap();
    assert_eq!(
        from_toml(&text).unwrap(),
        doc,
        "JSON -> TOML -> JSON is stable"
    );
    let built = build(&doc, &tables(), "draft").unwrap_or_else(|p| panic!("{p}"));
    let original = direct();
    assert_eq!(built.products.len(), original.products.len());
    assert_eq!(built.plans.len(), original.plans.len());
    assert_eq!(built.zones.len(), original.zones.len());
    assert_eq!(built.bundles.len(), original.bundles.len());
    assert_eq!(built.prefix_count(), original.prefix_count());
    assert_eq!(built.timezone, original.timezone);
    assert_eq!(charges(&built), charges(&original));
}

#[test]
fn toml_datetimes_become_strings() {
    let doc =
        from_toml("[catalogue]\nname = \"d\"\ncurrency = \"EUR\"\nday = 2026-01-01\n").unwrap();
    assert_eq!(doc["catalogue"]["day"], "2026-01-01");
    let err = from_toml("[catalogue\n").unwrap_err();
    assert_eq!(err.0[0].line, Some(1), "{err}");
}

#[test]
fn items_are_put_replaced_and_deleted_in_place() {
    let mut doc = from_toml(SAMPLE).unwrap();
    let ids = |doc: &Value| -> Vec<String> {
        list_items(doc, "zones")
            .unwrap()
            .iter()
            .map(|z| z["id"].as_str().unwrap().to_string())
            .collect()
    };
    let before = ids(&doc);
    assert_eq!(before[1], "de-mobile");
    // Replace keeps the position; the id is filled in.
    let created = put_item(&mut doc, "zones", "de-mobile", json!({"name": "Mobile"})).unwrap();
    assert!(!created);
    assert_eq!(ids(&doc), before);
    assert_eq!(
        get_item(&doc, "zones", "de-mobile").unwrap().unwrap(),
        json!({"id": "de-mobile", "name": "Mobile"})
    );
    // A new id is appended.
    assert!(put_item(&mut doc, "zones", "mars", json!({"id": "mars"})).unwrap());
    assert_eq!(ids(&doc).last().map(String::as_str), Some("mars"));
    // A new section is created on first use.
    let mut fresh = empty();
    assert!(put_item(&mut fresh, "services", "voice", json!({"unit": "second"})).unwrap());
    assert_eq!(list_items(&fresh, "services").unwrap().len(), 1);
    assert_eq!(list_items(&fresh, "plans").unwrap(), Vec::<Value>::new());
    // Delete.
    assert!(delete_item(&mut doc, "zones", "mars").unwrap());
    assert!(!delete_item(&mut doc, "zones", "mars").unwrap());
    assert_eq!(ids(&doc), before);
    assert_eq!(get_item(&doc, "zones", "mars").unwrap(), None);
    // Header.
    let mut header = get_header(&doc).unwrap().unwrap();
    header["name"] = json!("Renamed");
    put_header(&mut doc, header).unwrap();
    let built = build(&doc, &tables(), "draft").unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(built.name, "Renamed");
    assert_eq!(built.zones[1].name, "Mobile");
}

#[test]
fn bad_edits_are_refused_with_codes() {
    let mut doc = from_toml(SAMPLE).unwrap();
    let code = |r: Result<bool, DocumentError>| r.unwrap_err().code();
    assert_eq!(
        code(put_item(&mut doc, "plan", "x", json!({}))),
        "catalogue.unknown_section"
    );
    assert_eq!(
        code(get_item(&doc, "catalogue", "x").map(|_| true)),
        "catalogue.unknown_section"
    );
    let mismatch = put_item(&mut doc, "zones", "a", json!({"id": "b"})).unwrap_err();
    assert_eq!(mismatch.code(), "catalogue.item_id_mismatch");
    assert!(mismatch.to_string().contains("\"b\""), "{mismatch}");
    assert_eq!(
        code(put_item(&mut doc, "zones", "a", json!({"id": 7}))),
        "catalogue.item_id_mismatch"
    );
    let not_object = put_item(&mut doc, "zones", "a", json!(["a"])).unwrap_err();
    assert_eq!(not_object.code(), "catalogue.not_an_object");
    assert!(
        not_object.to_string().starts_with("zones[10]:"),
        "{not_object}"
    );
    assert_eq!(
        code(put_item(&mut doc, "zones", " ", json!({}))),
        "catalogue.invalid_id"
    );
    // Nulls inside an item are refused at the edit, with their path.
    let null = put_item(
        &mut doc,
        "plans",
        "consumer-eur",
        json!({"rules": [{"id": "r", "service": "voice", "price": null}]}),
    )
    .unwrap_err();
    assert_eq!(null.code(), "catalogue.null_value");
    assert_eq!(null.path(), Some("plans[0].rules[0].price"));
    assert_eq!(
        code(put_header(&mut doc, json!("x")).map(|()| true)),
        "catalogue.not_an_object"
    );
    let mut array = json!([]);
    assert_eq!(
        code(delete_item(&mut array, "zones", "x")),
        "catalogue.not_an_object"
    );
    let mut bad = json!({"zones": {"id": "x"}});
    assert_eq!(
        code(put_item(&mut bad, "zones", "x", json!({}))),
        "catalogue.not_a_list"
    );
    // Nothing was changed by the refused edits.
    assert_eq!(doc, from_toml(SAMPLE).unwrap());
}

#[test]
fn nulls_and_bad_roots_are_refused_with_their_path() {
    let err = to_toml(&json!(["x"])).unwrap_err();
    assert_eq!(err.code(), "catalogue.not_an_object");
    assert!(err.to_string().contains("(document)"), "{err}");
    let mut doc = from_toml(SAMPLE).unwrap();
    doc["plans"][2]["rules"][0]["price"] = Value::Null;
    let err = to_toml(&doc).unwrap_err();
    assert_eq!(err.code(), "catalogue.null_value");
    assert_eq!(err.path(), Some("plans[2].rules[0].price"));
    assert!(
        err.to_string().starts_with("plans[2].rules[0].price: "),
        "{err}"
    );
    let problems = build(&doc, &tables(), "draft").unwrap_err();
    assert_eq!(problems.0[0].key, "plans[2].rules[0].price");
    let huge = json!({"catalogue": {"charge_precision": u64::MAX}});
    assert_eq!(
        to_toml(&huge).unwrap_err().code(),
        "catalogue.number_out_of_range"
    );
}

#[test]
fn floats_reach_the_loader_which_asks_for_strings() {
    let mut doc = from_toml(SAMPLE).unwrap();
    doc["plans"][0]["rules"][0]["price"] = json!({"rate": 0.05});
    doc["catalogue"]["charge_precision"] = json!(4);
    let text = to_toml(&doc).unwrap();
    assert!(text.contains("rate = 0.05"), "{text}");
    assert!(text.contains("charge_precision = 4\n"), "{text}");
    let problems = build(&doc, &tables(), "draft").unwrap_err();
    let p = problems
        .0
        .iter()
        .find(|p| p.key == "plans[0].rules[0].price.rate")
        .unwrap_or_else(|| panic!("{problems}"));
    assert!(p.message.contains("write amounts as strings"), "{p}");
    assert_eq!(p.file, "draft");
    assert!(
        p.line.is_some(),
        "lines of the generated TOML are kept: {p}"
    );
}

#[test]
fn a_missing_or_bad_prefix_table_is_a_problem_of_its_destinations_item() {
    let doc = from_toml(SAMPLE).unwrap();
    let problems = build(&doc, &BTreeMap::new(), "draft").unwrap_err();
    assert_eq!(problems.0.len(), 1, "{problems}");
    assert_eq!(problems.0[0].key, "destinations[0].file");
    assert!(
        problems.0[0].message.contains("\"prefixes.csv\"")
            && problems.0[0].message.contains("\"world\""),
        "{problems}"
    );
    let bad = BTreeMap::from([(
        "prefixes.csv".to_string(),
        b"prefix,zone\n49,de-fixed\n4915,atlantis\n".to_vec(),
    )]);
    let problems = build(&doc, &bad, "draft").unwrap_err();
    assert_eq!(problems.0[0].file, "prefixes.csv");
    assert_eq!(problems.0[0].line, Some(3));
    assert_eq!(problems.0[0].key, "destinations[0]");
    let binary = BTreeMap::from([("prefixes.csv".to_string(), vec![0xff, 0xfe])]);
    let problems = build(&doc, &binary, "draft").unwrap_err();
    assert!(problems.to_string().contains("not UTF-8"), "{problems}");
}

#[test]
fn prefix_tables_are_counted_and_checked() {
    let info = prefix_table_info(PREFIXES.as_bytes()).unwrap();
    assert_eq!(info.rows, 36);
    assert_eq!(info.bytes, PREFIXES.len() as u64);
    assert_eq!(info.sha256, sha256_hex(PREFIXES.as_bytes()));
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let bad = "prefix,zone\n49,de\n# comment\n\nabc,de\n49,de\n4915\n4916,\n";
    let problems = prefix_table_info(bad.as_bytes()).unwrap_err();
    let found: Vec<(Option<usize>, &str)> = problems
        .0
        .iter()
        .map(|p| (p.line, p.message.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            (Some(5), "prefix \"abc\" must be 1 to 15 digits"),
            (Some(6), "duplicate prefix 49"),
            (Some(7), "expected prefix,zone[,description]"),
            (Some(8), "the zone column is empty"),
        ]
    );
    let mut many = String::from("prefix,zone\n");
    for _ in 0..250 {
        many.push_str("x,de\n");
    }
    let problems = prefix_table_info(many.as_bytes()).unwrap_err();
    assert_eq!(problems.0.len(), PREFIX_PROBLEMS_MAX + 1);
    assert!(
        problems.0[PREFIX_PROBLEMS_MAX]
            .message
            .starts_with("150 more")
    );
}

#[test]
fn a_100k_row_prefix_table_is_counted_and_builds() {
    let mut csv = String::from("prefix,zone,description\n");
    for i in 0..100_000u32 {
        csv.push_str(&format!("49{i:07},de-fixed,generated\n"));
    }
    let info = prefix_table_info(csv.as_bytes()).unwrap();
    assert_eq!(info.rows, 100_000);
    assert_eq!(info.bytes, csv.len() as u64);
    assert_eq!(info.sha256.len(), 64);
    let doc = from_toml(SAMPLE).unwrap();
    let big = BTreeMap::from([("prefixes.csv".to_string(), csv.into_bytes())]);
    let cat = build(&doc, &big, "draft").unwrap_or_else(|p| panic!("{p}"));
    // The generated table plus the four inline caller-region entries.
    assert_eq!(cat.prefix_count(), 100_004);
}
