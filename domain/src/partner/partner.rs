//! A partner: who takes a share of revenue, and where its money goes.

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::billing::{ContactPerson, FieldError};
use crate::ids::PartnerId;

/// Longest free text field (legal name, contact name).
pub const TEXT_LEN_MAX: usize = 200;
/// Most contacts kept per partner.
pub const CONTACTS_MAX: usize = 16;

/// Whether a partner is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerStatus {
    /// Shares accrue and statements are issued.
    #[default]
    Active,
    /// Shares accrue; statements and payouts are held.
    Suspended,
    /// No new agreement; open positions are still settled.
    Terminated,
}

/// A revenue-share partner (content provider, MVNO host, interconnect party).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partner {
    /// Id.
    pub id: PartnerId,
    /// Legal name printed on self-billing documents.
    pub legal_name: String,
    /// People to talk to (settlement, disputes).
    #[serde(default)]
    pub contacts: Vec<ContactPerson>,
    /// VAT or tax registration number (letters and digits, optional country prefix).
    #[serde(default)]
    pub tax_id: Option<String>,
    /// Bank account for payouts, as an IBAN (spaces allowed).
    #[serde(default)]
    pub bank_reference: Option<String>,
    /// Status.
    #[serde(default)]
    pub status: PartnerStatus,
    /// How the partner's supply is taxed on its self-billing documents (the billing setup's tax
    /// scheme gives the rate); none: no tax lines (exempt or reverse charge).
    #[serde(default)]
    pub tax: Option<PartnerTax>,
}

/// Tax category and jurisdiction of a partner's supply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerTax {
    /// Tax category of what the partner sells (e.g. `content`).
    pub category: SmolStr,
    /// The partner's tax jurisdiction (e.g. `DE`).
    pub jurisdiction: SmolStr,
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

    fn text(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.add(path, "partner.required", "must not be empty");
        } else if value.chars().count() > TEXT_LEN_MAX {
            self.add(
                path,
                "partner.too_long",
                format!("at most {TEXT_LEN_MAX} characters"),
            );
        }
    }
}

/// Whether `text` is an IBAN: country letters, check digits, 11..=30 letters or digits, and
/// the ISO 13616 mod-97 check equal to 1. Spaces are ignored.
pub fn is_iban(text: &str) -> bool {
    let compact: Vec<u8> = text.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len())
        || !compact[..2].iter().all(u8::is_ascii_uppercase)
        || !compact[2..4].iter().all(u8::is_ascii_digit)
        || !compact
            .iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        return false;
    }
    let rotated = compact[4..].iter().chain(&compact[..4]);
    let mut remainder: u32 = 0;
    for b in rotated {
        let value = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

impl Partner {
    /// Checks every field and returns all problems at once (codes `partner.*`).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut problems = Problems(Vec::new());
        problems.text("id", self.id.as_str());
        problems.text("legal_name", &self.legal_name);
        if self.contacts.len() > CONTACTS_MAX {
            problems.add(
                "contacts",
                "partner.too_many",
                format!("at most {CONTACTS_MAX} contacts"),
            );
        }
        for (i, contact) in self.contacts.iter().enumerate() {
            problems.text(&format!("contacts[{i}].name"), &contact.name);
            if contact.email.is_none() && contact.phone.is_none() {
                problems.add(
                    format!("contacts[{i}]"),
                    "partner.unreachable_contact",
                    "give an e-mail address or a phone number",
                );
            }
            if let Some(email) = &contact.email {
                let valid = email.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty()
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                        && !domain.contains('@')
                }) && !email.chars().any(char::is_whitespace);
                if !valid {
                    problems.add(
                        format!("contacts[{i}].email"),
                        "partner.invalid_email",
                        format!("{email:?} is not an e-mail address"),
                    );
                }
            }
            if let Some(phone) = &contact.phone {
                let digits = phone.strip_prefix('+').unwrap_or("");
                let valid = (7..=15).contains(&digits.len())
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && !digits.starts_with('0');
                if !valid {
                    problems.add(
                        format!("contacts[{i}].phone"),
                        "partner.invalid_phone",
                        format!("{phone:?} is not E.164 (+ and 7..=15 digits)"),
                    );
                }
            }
        }
        if let Some(tax_id) = &self.tax_id {
            let valid = (4..=20).contains(&tax_id.len())
                && tax_id.bytes().all(|b| b.is_ascii_alphanumeric());
            if !valid {
                problems.add(
                    "tax_id",
                    "partner.invalid_tax_id",
                    "4 to 20 letters or digits, no spaces",
                );
            }
        }
        if let Some(iban) = &self.bank_reference
            && !is_iban(iban)
        {
            problems.add(
                "bank_reference",
                "partner.invalid_iban",
                format!("{iban:?} is not a valid IBAN"),
            );
        }
        if problems.0.is_empty() {
            Ok(())
        } else {
            Err(problems.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partner() -> Partner {
        Partner {
            id: PartnerId::new("acme-music"),
            legal_name: "Acme Music GmbH".into(),
            contacts: vec![ContactPerson {
                name: "Ada Settle".into(),
                role: Some("settlement".into()),
                email: Some("ada@acme.example".into()),
                phone: Some("+4930123456".into()),
            }],
            tax_id: Some("DE123456789".into()),
            bank_reference: Some("DE89 3704 0044 0532 0130 00".into()),
            status: PartnerStatus::Active,
            tax: None,
        }
    }

    #[test]
    fn a_complete_partner_is_valid() {
        assert_eq!(partner().validate(), Ok(()));
    }

    #[test]
    fn every_problem_is_reported_with_its_code() {
        let mut p = partner();
        p.legal_name = "  ".into();
        p.contacts[0].email = Some("not-an-address".into());
        p.contacts[0].phone = Some("0301234".into());
        p.tax_id = Some("DE 123".into());
        // One digit changed: the mod-97 check fails.
        p.bank_reference = Some("DE89 3704 0044 0532 0130 01".into());
        let codes: Vec<&str> = p.validate().unwrap_err().iter().map(|e| e.code).collect();
        assert_eq!(
            codes,
            [
                "partner.required",
                "partner.invalid_email",
                "partner.invalid_phone",
                "partner.invalid_tax_id",
                "partner.invalid_iban"
            ]
        );
    }

    #[test]
    fn iban_check_digits() {
        assert!(is_iban("GB82WEST12345698765432"));
        assert!(!is_iban("GB82WEST12345698765433"));
        assert!(!is_iban("gb82west12345698765432"));
        assert!(!is_iban("GB82"));
    }
}
