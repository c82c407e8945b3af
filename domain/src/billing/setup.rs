//! The billing setup: bill cycles, the price list, discount definitions, the tax scheme and the
//! invoice numbering template, kept and versioned as one document so that a bill run reads one
//! consistent set. [`BillingSetup::validate`] checks the document as a whole and reports every
//! problem at once with its path, like [`super::Customer::validate`].

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::customer::FieldError;
use super::cycle::BillCycle;
use super::discount::{DiscountDefinition, DiscountValue};
use super::numbering::NumberTemplate;
use super::price_list::{PriceByCurrency, PriceList};
use super::tax::TaxScheme;

/// The numbering template used until one is set.
pub const INVOICE_NUMBER_TEMPLATE_DEFAULT: &str = "INV-{yyyy}-{seq:06}";

fn template_default() -> String {
    INVOICE_NUMBER_TEMPLATE_DEFAULT.to_string()
}

/// Everything a bill run needs besides accounts and usage, as one versioned document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingSetup {
    /// Incremented by every stored change; 0 when never set.
    #[serde(default)]
    pub version: u64,
    /// Bill cycles accounts refer to.
    #[serde(default)]
    pub cycles: Vec<BillCycle>,
    /// The price list (prices per currency).
    #[serde(default)]
    pub price_list: PriceList,
    /// Discount definitions accounts and subscriptions refer to.
    #[serde(default)]
    pub discounts: Vec<DiscountDefinition>,
    /// Tax rates.
    #[serde(default)]
    pub tax_scheme: TaxScheme,
    /// Invoice numbering template (see [`NumberTemplate`]).
    #[serde(default = "template_default")]
    pub invoice_number_template: String,
    /// Credit note numbering template (debit notes use the same with `DN` for `CN`).
    #[serde(default = "note_template_default")]
    pub credit_note_number_template: String,
    /// Pay-by term in days after the issue date for customers no dunning policy names.
    #[serde(default = "payment_terms_default")]
    pub payment_terms_days: u32,
    /// Dunning policies per customer credit class (see [`crate::finance::dunning`]).
    #[serde(default)]
    pub dunning_policies: Vec<crate::finance::DunningPolicy>,
}

/// The credit note numbering template used until one is set.
pub const CREDIT_NOTE_NUMBER_TEMPLATE_DEFAULT: &str = "CN-{yyyy}-{seq:06}";
/// The payment term used until one is set.
pub const PAYMENT_TERMS_DAYS_DEFAULT: u32 = 14;

fn note_template_default() -> String {
    CREDIT_NOTE_NUMBER_TEMPLATE_DEFAULT.to_string()
}

fn payment_terms_default() -> u32 {
    PAYMENT_TERMS_DAYS_DEFAULT
}

impl Default for BillingSetup {
    fn default() -> Self {
        BillingSetup {
            version: 0,
            cycles: Vec::new(),
            price_list: PriceList::default(),
            discounts: Vec::new(),
            tax_scheme: TaxScheme::default(),
            invoice_number_template: template_default(),
            credit_note_number_template: note_template_default(),
            payment_terms_days: PAYMENT_TERMS_DAYS_DEFAULT,
            dunning_policies: Vec::new(),
        }
    }
}

fn problem(path: impl Into<String>, code: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        path: path.into(),
        code,
        message: message.into(),
    }
}

fn check_amounts(path: &str, amounts: &PriceByCurrency, problems: &mut Vec<FieldError>) {
    for (currency, amount) in amounts {
        if amount.is_sign_negative() && !amount.is_zero() {
            problems.push(problem(
                format!("{path}.{currency}"),
                "billing.negative_amount",
                "must be zero or more",
            ));
        }
        if amount.scale() > currency.minor_units() {
            problems.push(problem(
                format!("{path}.{currency}"),
                "billing.amount_precision",
                format!(
                    "{amount} has more decimals than {currency} ({})",
                    currency.minor_units()
                ),
            ));
        }
    }
}

impl BillingSetup {
    /// The parsed numbering template.
    pub fn number_template(&self) -> Result<NumberTemplate, super::BillingError> {
        NumberTemplate::parse(&self.invoice_number_template)
    }

    /// A bill cycle by id.
    pub fn cycle(&self, id: &crate::ids::BillCycleId) -> Option<&BillCycle> {
        self.cycles.iter().find(|c| c.id == *id)
    }

    /// A discount definition by id.
    pub fn discount(&self, id: &crate::ids::DiscountId) -> Option<&DiscountDefinition> {
        self.discounts.iter().find(|d| d.id == *id)
    }

    /// Checks the document as a whole; returns every problem found.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut problems = Vec::new();
        let mut ids = BTreeSet::new();
        for (i, cycle) in self.cycles.iter().enumerate() {
            if cycle.id.as_str().trim().is_empty() {
                problems.push(problem(
                    format!("cycles[{i}].id"),
                    "billing.required",
                    "must not be empty",
                ));
            }
            if !ids.insert(cycle.id.clone()) {
                problems.push(problem(
                    format!("cycles[{i}].id"),
                    "billing.duplicate_cycle",
                    format!("cycle {} is defined twice", cycle.id),
                ));
            }
            if let Err(e) = cycle.validate() {
                problems.push(problem(format!("cycles[{i}]"), e.code(), e.to_string()));
            }
        }
        for (code, item) in &self.price_list.items {
            let path = format!("price_list.items.{code}");
            if item.code != *code {
                problems.push(problem(
                    format!("{path}.code"),
                    "billing.item_code_mismatch",
                    format!("the item under {code} has code {}", item.code),
                ));
            }
            if item.name.trim().is_empty() {
                problems.push(problem(
                    format!("{path}.name"),
                    "billing.required",
                    "must not be empty",
                ));
            }
            if item.prices.is_empty() {
                problems.push(problem(
                    format!("{path}.prices"),
                    "billing.required",
                    "at least one currency",
                ));
            }
            check_amounts(&format!("{path}.prices"), &item.prices, &mut problems);
        }
        let mut discount_ids = BTreeSet::new();
        for (i, discount) in self.discounts.iter().enumerate() {
            let path = format!("discounts[{i}]");
            if !discount_ids.insert(discount.id.clone()) {
                problems.push(problem(
                    format!("{path}.id"),
                    "billing.duplicate_discount",
                    format!("discount {} is defined twice", discount.id),
                ));
            }
            match &discount.value {
                DiscountValue::Percentage { percent } => {
                    if *percent < Decimal::ZERO || *percent > Decimal::ONE_HUNDRED {
                        problems.push(problem(
                            format!("{path}.value.percentage.percent"),
                            "billing.bad_discount",
                            "a percentage is 0..=100",
                        ));
                    }
                }
                DiscountValue::Fixed { amounts } => {
                    check_amounts(
                        &format!("{path}.value.fixed.amounts"),
                        amounts,
                        &mut problems,
                    );
                }
            }
            for (name, amounts) in [
                ("min_amount", &discount.min_amount),
                ("min_usage", &discount.min_usage),
            ] {
                if let Some(amounts) = amounts {
                    check_amounts(&format!("{path}.{name}"), amounts, &mut problems);
                }
            }
            if let (Some(from), Some(to)) = (discount.valid_from, discount.valid_to)
                && from >= to
            {
                problems.push(problem(
                    format!("{path}.valid_to"),
                    "billing.bad_discount",
                    "valid_to must be after valid_from",
                ));
            }
        }
        let mut rates = BTreeSet::new();
        for (i, rate) in self.tax_scheme.rates.iter().enumerate() {
            let path = format!("tax_scheme.rates[{i}]");
            if rate.rate < Decimal::ZERO || rate.rate >= Decimal::ONE {
                problems.push(problem(
                    format!("{path}.rate"),
                    "billing.bad_tax_rate",
                    "a rate is a fraction in [0, 1) (0.20 for 20 %)",
                ));
            }
            if !rates.insert((rate.category.clone(), rate.jurisdiction.clone())) {
                problems.push(problem(
                    path,
                    "billing.duplicate_tax_rate",
                    format!(
                        "category {:?} in {:?} has two rates",
                        rate.category, rate.jurisdiction
                    ),
                ));
            }
        }
        if let Err(e) = self.number_template() {
            problems.push(problem("invoice_number_template", e.code(), e.to_string()));
        }
        if let Err(e) = NumberTemplate::parse(&self.credit_note_number_template) {
            problems.push(problem(
                "credit_note_number_template",
                e.code(),
                e.to_string(),
            ));
        }
        if let Err(found) = crate::finance::collect::validate_policies(&self.dunning_policies) {
            for (path, message) in found {
                problems.push(problem(
                    format!("dunning_policies{path}"),
                    "dunning.invalid_policy",
                    message,
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn setup(value: serde_json::Value) -> BillingSetup {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_default_is_valid_and_numbers_like_inv_year_seq() {
        let s = BillingSetup::default();
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.invoice_number_template, "INV-{yyyy}-{seq:06}");
        assert_eq!(setup(json!({})), s);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let s = setup(json!({
            "cycles": [
                {"id": "m", "frequency": {"monthly": {"bill_day": 1}}},
                {"id": "m", "frequency": {"annual": {"bill_day": 1, "month": 13}}}
            ],
            "price_list": {"id": "p", "items": {"fee": {
                "code": "other", "name": "Fee", "kind": "one_off", "category": "fee",
                "tax_category": "telecom", "prices": {"EUR": "-1.001"}
            }}},
            "discounts": [{"id": "d", "name": "D", "value": {"percentage": {"percent": "120"}},
                           "scope": "invoice"}],
            "tax_scheme": {"id": "t", "rates": [
                {"category": "telecom", "jurisdiction": "DE", "code": "VAT", "rate": "1.5"},
                {"category": "telecom", "jurisdiction": "DE", "code": "VAT", "rate": "0.19"}
            ]},
            "invoice_number_template": "INV-{yyyy}"
        }));
        let problems = s.validate().unwrap_err();
        let found: Vec<(&str, &str)> = problems.iter().map(|p| (p.path.as_str(), p.code)).collect();
        for expected in [
            ("cycles[1].id", "billing.duplicate_cycle"),
            ("cycles[1]", "billing.bad_cycle"),
            ("price_list.items.fee.code", "billing.item_code_mismatch"),
            ("price_list.items.fee.prices.EUR", "billing.negative_amount"),
            (
                "price_list.items.fee.prices.EUR",
                "billing.amount_precision",
            ),
            (
                "discounts[0].value.percentage.percent",
                "billing.bad_discount",
            ),
            ("tax_scheme.rates[0].rate", "billing.bad_tax_rate"),
            ("tax_scheme.rates[1]", "billing.duplicate_tax_rate"),
            ("invoice_number_template", "billing.bad_number_template"),
        ] {
            assert!(found.contains(&expected), "{expected:?} not in {found:?}");
        }
    }
}
