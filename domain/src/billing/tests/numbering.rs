//! Invoice number templates.

use super::*;

#[test]
fn renders_numbers_and_series_keys() {
    let t = NumberTemplate::parse("INV-{yyyy}-{seq:06}").unwrap();
    let oct = day(2026, 10, 5);
    assert_eq!(t.render(oct, "", 42).unwrap(), "INV-2026-000042");
    assert_eq!(t.series_key(oct, "").unwrap(), "INV-2026");
    // Wider than the padding: printed in full, never truncated.
    assert_eq!(t.render(oct, "", 1_234_567).unwrap(), "INV-2026-1234567");
    assert_eq!(
        t.render(oct, "", 0).unwrap_err().code(),
        "billing.bad_sequence"
    );

    let t = NumberTemplate::parse("{series}/{yy}{mm}/{seq:4}").unwrap();
    assert!(t.uses_series());
    assert_eq!(t.render(oct, "FR1", 42).unwrap(), "FR1/2610/0042");
    // The month is in the key: numbering restarts every month.
    assert_eq!(t.series_key(oct, "FR1").unwrap(), "FR1/2610");
    assert_eq!(t.series_key(day(2026, 11, 1), "FR1").unwrap(), "FR1/2611");
    for series in ["", "a b", "much-too-long-series-name"] {
        assert_eq!(
            t.render(oct, series, 1).unwrap_err().code(),
            "billing.bad_number_template",
            "{series:?}"
        );
    }
    let t = NumberTemplate::parse("{seq}").unwrap();
    assert_eq!(t.render(oct, "", 7).unwrap(), "7");
    assert_eq!(t.series_key(oct, "").unwrap(), "default");
}

#[test]
fn refuses_bad_templates() {
    for bad in [
        "",
        "INV-{yyyy}",
        "INV-{seq}-{seq:04}",
        "INV-{dd}-{seq}",
        "INV-{seq",
        "INV {seq}",
        "INV-{seq:0}",
        "INV-{seq:21}",
        "INV-{seq:x}",
        "INV-{seq:+4}",
        "INV-}-{seq}",
    ] {
        let err = NumberTemplate::parse(bad).unwrap_err();
        assert_eq!(err.code(), "billing.bad_number_template", "{bad:?}");
    }
    let long = format!("{}{{seq}}", "A".repeat(64));
    assert!(NumberTemplate::parse(&long).is_err());
    // Serde goes through the same parser.
    let t: NumberTemplate = serde_json::from_str(r#""INV-{yyyy}-{seq:06}""#).unwrap();
    assert_eq!(
        serde_json::to_string(&t).unwrap(),
        r#""INV-{yyyy}-{seq:06}""#
    );
    assert!(serde_json::from_str::<NumberTemplate>(r#""INV""#).is_err());
}
