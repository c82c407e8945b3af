//! Customers: the physical or juridical persons that own accounts, and their validation.
//!
//! Validation returns every problem at once, each with a field path (`contact_person.email`,
//! `registration_address.country`, `custom.loyalty_tier`) and a stable `customer.*` code, so an
//! API can point at the exact field.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::ids::CustomerId;
use crate::money::Money;

/// Longest free-text field accepted (names, address lines, tax ids).
pub const TEXT_LEN_MAX: usize = 200;
/// Most custom attributes on one customer.
pub const CUSTOM_ATTRIBUTES_MAX: usize = 100;
/// Longest custom attribute key.
pub const CUSTOM_KEY_LEN_MAX: usize = 64;

/// A structured postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street lines, first to last (1..=4).
    pub lines: Vec<String>,
    /// City or locality.
    pub city: String,
    /// Postal code.
    #[serde(default)]
    pub postcode: Option<String>,
    /// Region, state or province.
    #[serde(default)]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2 country code (upper case).
    pub country: String,
}

/// A person to contact at a juridical customer (or a guardian of a physical one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactPerson {
    /// Full name.
    pub name: String,
    /// Role or position.
    #[serde(default)]
    pub role: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number in E.164 (`+` and 7..=15 digits).
    #[serde(default)]
    pub phone: Option<String>,
}

/// A physical person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhysicalPerson {
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Birthday.
    #[serde(default)]
    pub birthday: Option<Date>,
}

/// A juridical person (company, public body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JuridicalPerson {
    /// Registered legal name.
    pub legal_name: String,
    /// Number in the companies register.
    pub registration_number: String,
}

/// Physical or juridical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CustomerKind {
    /// A physical person.
    Physical(PhysicalPerson),
    /// A juridical person.
    Juridical(JuridicalPerson),
}

/// Where a customer stands commercially.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CustomerStatus {
    /// Known, not yet contracted.
    Prospect,
    /// Contracted.
    #[default]
    Active,
    /// Barred (e.g. by dunning).
    Suspended,
    /// Contract ended; kept for history.
    Closed,
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// Customer id.
    pub id: CustomerId,
    /// Physical or juridical, with the matching names.
    pub person: CustomerKind,
    /// Tax identification number.
    #[serde(default)]
    pub tax_id: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number in E.164.
    #[serde(default)]
    pub phone: Option<String>,
    /// Contact person.
    #[serde(default)]
    pub contact_person: Option<ContactPerson>,
    /// Address of residence (physical) or of business.
    #[serde(default)]
    pub residence_address: Option<Address>,
    /// Registered (legal) address.
    #[serde(default)]
    pub registration_address: Option<Address>,
    /// Operator-defined attributes (any JSON value; no code change needed).
    #[serde(default)]
    pub custom: BTreeMap<String, serde_json::Value>,
    /// Market segment (`residential`, `smb`, `enterprise`...).
    #[serde(default)]
    pub segment: Option<SmolStr>,
    /// Credit class (`a`, `b`, `c`...).
    #[serde(default)]
    pub credit_class: Option<SmolStr>,
    /// Credit limit.
    #[serde(default)]
    pub credit_limit: Option<Money>,
    /// Status.
    #[serde(default)]
    pub status: CustomerStatus,
}

/// One validation problem: where, a stable code, and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Path of the field (`registration_address.country`).
    pub path: String,
    /// Stable code (`customer.required`, `customer.invalid_email`...).
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, code: &'static str, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            code,
            message: message.into(),
        });
    }

    fn text(&mut self, path: &str, value: &str, required: bool) {
        if value.trim().is_empty() {
            if required {
                self.add(path, "customer.required", "must not be empty");
            } else {
                self.add(
                    path,
                    "customer.empty",
                    "omit the field instead of leaving it blank",
                );
            }
        } else if value.chars().count() > TEXT_LEN_MAX {
            self.add(
                path,
                "customer.too_long",
                format!("at most {TEXT_LEN_MAX} characters"),
            );
        }
    }

    fn email(&mut self, path: &str, value: &str) {
        let valid = value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        }) && !value.chars().any(char::is_whitespace)
            && value.len() <= 254;
        if !valid {
            self.add(
                path,
                "customer.invalid_email",
                format!("{value:?} is not an e-mail address"),
            );
        }
    }

    fn phone(&mut self, path: &str, value: &str) {
        let digits = value.strip_prefix('+').unwrap_or("");
        let valid = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !valid {
            self.add(
                path,
                "customer.invalid_phone",
                format!("{value:?} is not E.164 (+ and 7..=15 digits)"),
            );
        }
    }

    fn address(&mut self, path: &str, address: &Address) {
        if address.lines.is_empty() || address.lines.len() > 4 {
            self.add(
                format!("{path}.lines"),
                "customer.invalid_address",
                "1 to 4 lines",
            );
        }
        for (i, line) in address.lines.iter().enumerate() {
            self.text(&format!("{path}.lines[{i}]"), line, true);
        }
        self.text(&format!("{path}.city"), &address.city, true);
        if let Some(postcode) = &address.postcode {
            self.text(&format!("{path}.postcode"), postcode, false);
        }
        if let Some(region) = &address.region {
            self.text(&format!("{path}.region"), region, false);
        }
        let country = &address.country;
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            self.add(
                format!("{path}.country"),
                "customer.invalid_country",
                format!("{country:?} is not an ISO 3166-1 alpha-2 code"),
            );
        }
    }
}

impl Customer {
    /// The name printed on invoices: "first last" or the legal name.
    pub fn display_name(&self) -> String {
        match &self.person {
            CustomerKind::Physical(p) => format!("{} {}", p.first_name.trim(), p.last_name.trim()),
            CustomerKind::Juridical(j) => j.legal_name.trim().to_string(),
        }
    }

    /// Checks every field; `today` bounds the birthday. Returns all problems found.
    pub fn validate(&self, today: Date) -> Result<(), Vec<FieldError>> {
        let mut p = Problems(Vec::new());
        p.text("id", self.id.as_str(), true);
        match &self.person {
            CustomerKind::Physical(person) => {
                p.text("person.first_name", &person.first_name, true);
                p.text("person.last_name", &person.last_name, true);
                if let Some(birthday) = person.birthday
                    && (birthday > today || birthday.year() < 1900)
                {
                    p.add(
                        "person.birthday",
                        "customer.invalid_birthday",
                        format!("{birthday} is in the future or before 1900"),
                    );
                }
            }
            CustomerKind::Juridical(company) => {
                p.text("person.legal_name", &company.legal_name, true);
                p.text(
                    "person.registration_number",
                    &company.registration_number,
                    true,
                );
            }
        }
        if let Some(tax_id) = &self.tax_id {
            p.text("tax_id", tax_id, false);
        }
        if let Some(email) = &self.email {
            p.email("email", email);
        }
        if let Some(phone) = &self.phone {
            p.phone("phone", phone);
        }
        if let Some(contact) = &self.contact_person {
            p.text("contact_person.name", &contact.name, true);
            if let Some(role) = &contact.role {
                p.text("contact_person.role", role, false);
            }
            if let Some(email) = &contact.email {
                p.email("contact_person.email", email);
            }
            if let Some(phone) = &contact.phone {
                p.phone("contact_person.phone", phone);
            }
        }
        if let Some(address) = &self.residence_address {
            p.address("residence_address", address);
        }
        if let Some(address) = &self.registration_address {
            p.address("registration_address", address);
        }
        if matches!(self.person, CustomerKind::Juridical(_)) && self.registration_address.is_none()
        {
            p.add(
                "registration_address",
                "customer.required",
                "a juridical customer needs its registered address",
            );
        }
        if self.custom.len() > CUSTOM_ATTRIBUTES_MAX {
            p.add(
                "custom",
                "customer.too_many_attributes",
                format!("at most {CUSTOM_ATTRIBUTES_MAX} attributes"),
            );
        }
        for key in self.custom.keys() {
            let valid = !key.is_empty()
                && key.len() <= CUSTOM_KEY_LEN_MAX
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                p.add(
                    format!("custom.{key}"),
                    "customer.invalid_attribute_key",
                    format!("keys are 1..={CUSTOM_KEY_LEN_MAX} of [a-z0-9_]"),
                );
            }
        }
        for (path, value) in [
            ("segment", &self.segment),
            ("credit_class", &self.credit_class),
        ] {
            if let Some(value) = value {
                p.text(path, value, false);
            }
        }
        if let Some(limit) = &self.credit_limit
            && limit.amount.is_sign_negative()
            && !limit.amount.is_zero()
        {
            p.add(
                "credit_limit",
                "customer.negative_credit_limit",
                "must be zero or more",
            );
        }
        if p.0.is_empty() { Ok(()) } else { Err(p.0) }
    }
}
