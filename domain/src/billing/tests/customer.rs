//! Customer validation and serde shape.

use super::*;

fn physical() -> Customer {
    serde_json::from_str(
        r#"{
            "id": "c-1",
            "person": {"type": "physical", "first_name": "Ada", "last_name": "Lovelace",
                       "birthday": "1990-12-10"},
            "email": "ada@example.org",
            "phone": "+33612345678",
            "residence_address": {"lines": ["1 rue de la Paix"], "city": "Paris",
                                  "postcode": "75002", "country": "FR"},
            "custom": {"loyalty_tier": "gold", "children": 2, "tags": ["vip"]},
            "segment": "residential",
            "credit_class": "a",
            "credit_limit": {"amount": "500.00", "currency": "EUR"}
        }"#,
    )
    .unwrap()
}

fn juridical() -> Customer {
    serde_json::from_str(
        r#"{
            "id": "c-2",
            "person": {"type": "juridical", "legal_name": "Acme SAS",
                       "registration_number": "RCS 123 456 789"},
            "tax_id": "FR12345678901",
            "contact_person": {"name": "Bob Martin", "role": "CFO", "email": "bob@acme.fr"},
            "registration_address": {"lines": ["2 av. Foch", "Bât. B"], "city": "Lyon",
                                     "region": "ARA", "country": "FR"},
            "status": "prospect"
        }"#,
    )
    .unwrap()
}

fn codes(customer: &Customer) -> Vec<(String, &'static str)> {
    customer
        .validate(day(2026, 6, 1))
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.path, e.code))
        .collect()
}

#[test]
fn valid_customers_pass() {
    let ada = physical();
    assert_eq!(codes(&ada), vec![]);
    assert_eq!(ada.display_name(), "Ada Lovelace");
    assert_eq!(ada.custom["children"], serde_json::json!(2));
    let acme = juridical();
    assert_eq!(codes(&acme), vec![]);
    assert_eq!(acme.display_name(), "Acme SAS");
    assert_eq!(acme.status, CustomerStatus::Prospect);
    let json = serde_json::to_string(&acme).unwrap();
    assert!(json.contains(r#""type":"juridical""#));
    assert_eq!(serde_json::from_str::<Customer>(&json).unwrap(), acme);
}

#[test]
fn every_problem_is_reported_with_its_path_and_code() {
    let mut ada = physical();
    if let CustomerKind::Physical(p) = &mut ada.person {
        p.first_name = " ".into();
        p.birthday = Some(day(2030, 1, 1));
    }
    ada.email = Some("ada@localhost".into());
    ada.phone = Some("0612345678".into());
    ada.contact_person = Some(ContactPerson {
        name: "Guardian".into(),
        role: None,
        email: Some("not an email".into()),
        phone: Some("+1".into()),
    });
    if let Some(address) = &mut ada.residence_address {
        address.country = "France".into();
        address.lines.clear();
    }
    ada.custom.insert("Bad Key".into(), serde_json::json!(1));
    ada.credit_limit = Some(eur(rust_decimal_macros::dec!(-1)));
    let expected = [
        ("person.first_name", "customer.required"),
        ("person.birthday", "customer.invalid_birthday"),
        ("email", "customer.invalid_email"),
        ("phone", "customer.invalid_phone"),
        ("contact_person.email", "customer.invalid_email"),
        ("contact_person.phone", "customer.invalid_phone"),
        ("residence_address.lines", "customer.invalid_address"),
        ("residence_address.country", "customer.invalid_country"),
        ("custom.Bad Key", "customer.invalid_attribute_key"),
        ("credit_limit", "customer.negative_credit_limit"),
    ];
    let expected: Vec<(String, &str)> = expected.iter().map(|(p, c)| (p.to_string(), *c)).collect();
    assert_eq!(codes(&ada), expected);

    let mut acme = juridical();
    acme.registration_address = None;
    if let CustomerKind::Juridical(j) = &mut acme.person {
        j.legal_name = "A".repeat(201);
        j.registration_number = String::new();
    }
    assert_eq!(
        codes(&acme),
        vec![
            ("person.legal_name".to_string(), "customer.too_long"),
            (
                "person.registration_number".to_string(),
                "customer.required"
            ),
            ("registration_address".to_string(), "customer.required"),
        ]
    );
}

#[test]
fn unknown_fields_are_refused() {
    let bad = r#"{"id":"c","person":{"type":"physical","first_name":"A","last_name":"B",
                  "nickname":"x"}}"#;
    assert!(serde_json::from_str::<Customer>(bad).is_err());
    let bad = r#"{"id":"c","person":{"type":"physical","first_name":"A","last_name":"B"},
                  "vip":true}"#;
    assert!(serde_json::from_str::<Customer>(bad).is_err());
    let bad = r#"{"id":"c","person":{"type":"robot"}}"#;
    assert!(serde_json::from_str::<Customer>(bad).is_err());
}
