//! Assembly of a convergent invoice: [`build_invoice`].

use std::collections::{BTreeMap, BTreeSet};

use super::charges::fee_lines;
use super::cycle::Period;
use super::discount::{DiscountDefinition, DiscountLevel, DiscountScope, Pool};
use super::error::BillingError;
use super::hierarchy::{Account, Forest};
use super::invoice::{
    AccountCharges, Amount, DiscountLine, FeeLine, InvoiceDraft, InvoiceInput, InvoiceSection,
    InvoiceTotals, UsageLine,
};
use super::tax::{TaxBase, tax_lines};
use crate::ids::{AccountId, DiscountId, ItemCode, SubscriptionId};
use crate::money::{Currency, RoundingMode};

struct Context<'a> {
    currency: Currency,
    period: Period,
    next_period: Period,
    definitions: BTreeMap<&'a DiscountId, &'a DiscountDefinition>,
    payer: &'a AccountId,
}

impl<'a> Context<'a> {
    fn definitions(
        &self,
        ids: impl Iterator<Item = &'a DiscountId>,
    ) -> Result<Vec<&'a DiscountDefinition>, BillingError> {
        ids.map(|id| {
            self.definitions
                .get(id)
                .copied()
                .ok_or_else(|| BillingError::UnknownDiscount(id.clone()))
        })
        .collect()
    }

    /// Applies `definition` to what is left in `pool` and records the line.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        definition: &DiscountDefinition,
        level: DiscountLevel,
        pool: &mut Pool,
        usage_minor: i64,
        subscription: Option<&SubscriptionId>,
        item: Option<&ItemCode>,
        out: &mut Vec<DiscountLine>,
    ) -> Result<(), BillingError> {
        let base = pool.total()?;
        let discount = definition.amount_on(base, usage_minor, self.currency, &self.period)?;
        if discount == 0 {
            return Ok(());
        }
        let allocation = pool.take(discount, self.currency)?;
        out.push(DiscountLine {
            discount: definition.id.clone(),
            name: definition.name.clone(),
            level,
            subscription: subscription.cloned(),
            item: item.cloned(),
            base: Amount::from_minor(base, self.currency),
            amount: Amount::from_minor(-discount, self.currency),
            allocation,
        });
        Ok(())
    }
}

fn sum_minor(values: impl IntoIterator<Item = i64>) -> Result<i64, BillingError> {
    values
        .into_iter()
        .try_fold(0i64, |acc, v| acc.checked_add(v))
        .ok_or(BillingError::Overflow)
}

/// Builds the convergent invoice of `input.payer` for `input.period`.
///
/// Refuses (with the code the worker dead-letters the account with): a payer that does not pay
/// for itself, a cycle or period that do not match, an account, usage or price in another
/// currency, a missing price, discount or tax rate.
pub fn build_invoice(input: &InvoiceInput) -> Result<InvoiceDraft, BillingError> {
    let payer = input
        .accounts
        .iter()
        .map(|a| &a.account)
        .find(|a| a.id == input.payer)
        .ok_or_else(|| BillingError::UnknownAccount(input.payer.clone()))?;
    if !payer.is_payer() {
        return Err(BillingError::NotAPayer(payer.id.clone()));
    }
    if input.cycle.id != payer.bill_cycle {
        return Err(BillingError::UnknownCycle(payer.bill_cycle.clone()));
    }
    input.cycle.check_period(&input.period)?;
    let next_period = input.cycle.next_period(&input.period)?;

    // The payer's own ancestors are not part of its invoice: cut the hierarchy above it.
    let forest = Forest::new(input.accounts.iter().map(|a| {
        let mut account = a.account.clone();
        if account.id == payer.id {
            account.parent = None;
        }
        account
    }))?;
    let billed = forest.billed_subtree(&payer.id)?;
    let billed_ids: BTreeSet<&AccountId> = billed.iter().map(|b| &b.account).collect();
    let mut by_id: BTreeMap<&AccountId, &AccountCharges> = BTreeMap::new();
    for charges in &input.accounts {
        let id = &charges.account.id;
        let has_charges = !charges.subscriptions.is_empty() || !charges.usage.is_empty();
        if has_charges && !billed_ids.contains(id) {
            return Err(BillingError::NotBilledByPayer {
                account: id.clone(),
                payer: payer.id.clone(),
            });
        }
        by_id.insert(id, charges);
    }

    let context = Context {
        currency: payer.currency,
        period: input.period,
        next_period,
        definitions: input.discounts.iter().map(|d| (&d.id, d)).collect(),
        payer: &payer.id,
    };
    let mut sections = Vec::with_capacity(billed.len());
    let mut invoice_pool = Pool::default();
    let mut invoice_usage = 0i64;
    for entry in &billed {
        let charges = by_id
            .get(&entry.account)
            .ok_or_else(|| BillingError::UnknownAccount(entry.account.clone()))?;
        let (section, pool, usage) = build_section(&context, input, charges, entry.depth)?;
        invoice_pool.absorb(&pool)?;
        invoice_usage = invoice_usage
            .checked_add(usage)
            .ok_or(BillingError::Overflow)?;
        sections.push(section);
    }

    let mut discounts = Vec::new();
    let invoice_level = context.definitions(payer.discounts.iter())?;
    for definition in invoice_level {
        if definition.scope == DiscountScope::Invoice {
            context.apply(
                definition,
                DiscountLevel::Invoice,
                &mut invoice_pool,
                invoice_usage,
                None,
                None,
                &mut discounts,
            )?;
        }
    }

    let currency = payer.currency;
    let tax_lines = tax_lines(&input.tax_scheme, &invoice_pool.parts, currency)?;
    let subtotal = sum_minor(
        sections
            .iter()
            .map(|s| s.total.minor)
            .chain(discounts.iter().map(|d| d.amount.minor)),
    )?;
    let tax = sum_minor(tax_lines.iter().map(|t| t.tax.minor))?;
    let inclusive_tax = sum_minor(
        tax_lines
            .iter()
            .filter(|t| t.inclusive)
            .map(|t| t.tax.minor),
    )?;
    let net = subtotal
        .checked_sub(inclusive_tax)
        .ok_or(BillingError::Overflow)?;
    let gross = net.checked_add(tax).ok_or(BillingError::Overflow)?;
    Ok(InvoiceDraft {
        payer: payer.id.clone(),
        customer: payer.customer.clone(),
        currency,
        period: input.period,
        next_period,
        sections,
        discounts,
        tax_lines,
        totals: InvoiceTotals {
            subtotal: Amount::from_minor(subtotal, currency),
            net: Amount::from_minor(net, currency),
            tax: Amount::from_minor(tax, currency),
            gross: Amount::from_minor(gross, currency),
        },
    })
}

/// One account's section, what is left of it for invoice-level discounts, and its usage total.
fn build_section(
    context: &Context<'_>,
    input: &InvoiceInput,
    charges: &AccountCharges,
    depth: u32,
) -> Result<(InvoiceSection, Pool, i64), BillingError> {
    let account: &Account = &charges.account;
    let currency = context.currency;
    if account.currency != currency {
        return Err(BillingError::CurrencyMismatch {
            account: account.id.clone(),
            expected: currency,
            found: account.currency,
        });
    }
    let tax_base = |category: &smol_str::SmolStr| TaxBase {
        category: category.clone(),
        jurisdiction: account.tax_jurisdiction.clone(),
    };

    let mut usage = Vec::with_capacity(charges.usage.len());
    for summary in &charges.usage {
        if summary.amount.currency != currency {
            return Err(BillingError::CurrencyMismatch {
                account: account.id.clone(),
                expected: currency,
                found: summary.amount.currency,
            });
        }
        usage.push(UsageLine {
            service: summary.service.clone(),
            events: summary.events,
            quantity: summary.quantity,
            tax_category: summary.tax_category.clone(),
            amount: Amount::exact(summary.amount.round_to_minor(RoundingMode::HalfUp))?,
        });
    }
    usage.sort_by(|a, b| a.service.cmp(&b.service));
    let usage_minor = sum_minor(usage.iter().map(|u| u.amount.minor))?;

    let mut subscriptions: Vec<_> = charges.subscriptions.iter().collect();
    subscriptions.sort_by(|a, b| a.id.cmp(&b.id));
    let mut fees: Vec<FeeLine> = Vec::new();
    let mut discounts = Vec::new();
    let mut section_pool = Pool::default();
    for line in &usage {
        section_pool.add(&tax_base(&line.tax_category), line.amount.minor)?;
    }
    for subscription in subscriptions {
        if subscription.account != account.id {
            return Err(BillingError::NotBilledByPayer {
                account: subscription.account.clone(),
                payer: context.payer.clone(),
            });
        }
        let attached = context.definitions(
            subscription
                .discounts
                .iter()
                .chain(account.discounts.iter()),
        )?;
        let lines = fee_lines(
            subscription,
            &input.price_list,
            currency,
            &context.period,
            &context.next_period,
        )?;
        // Level 1: each fee line on its own.
        let mut subscription_pool = Pool::default();
        for line in &lines {
            let mut line_pool = Pool::default();
            line_pool.add(&tax_base(&line.tax_category), line.amount.minor)?;
            for definition in &attached {
                let matches = match &definition.scope {
                    DiscountScope::Item { code } => *code == line.item,
                    DiscountScope::Product { code } => *code == line.product,
                    _ => false,
                };
                if matches {
                    context.apply(
                        definition,
                        DiscountLevel::Item,
                        &mut line_pool,
                        usage_minor,
                        Some(&subscription.id),
                        Some(&line.item),
                        &mut discounts,
                    )?;
                }
            }
            subscription_pool.absorb(&line_pool)?;
        }
        // Level 2: the subscription's fee lines together.
        for definition in &attached {
            if definition.scope == DiscountScope::Subscription {
                context.apply(
                    definition,
                    DiscountLevel::Subscription,
                    &mut subscription_pool,
                    usage_minor,
                    Some(&subscription.id),
                    None,
                    &mut discounts,
                )?;
            }
        }
        section_pool.absorb(&subscription_pool)?;
        fees.extend(lines);
    }
    // Level 3: the whole section.
    let is_payer = account.id == *context.payer;
    for definition in context.definitions(account.discounts.iter())? {
        let section_level = match definition.scope {
            DiscountScope::Account => true,
            DiscountScope::Invoice => !is_payer,
            _ => false,
        };
        if section_level {
            context.apply(
                definition,
                DiscountLevel::Account,
                &mut section_pool,
                usage_minor,
                None,
                None,
                &mut discounts,
            )?;
        }
    }
    let total = sum_minor(
        usage
            .iter()
            .map(|u| u.amount.minor)
            .chain(fees.iter().map(|f| f.amount.minor))
            .chain(discounts.iter().map(|d| d.amount.minor)),
    )?;
    let section = InvoiceSection {
        depth,
        account: account.id.clone(),
        customer_name: charges.customer_name.clone(),
        usage,
        fees,
        discounts,
        total: Amount::from_minor(total, currency),
    };
    Ok((section, section_pool, usage_minor))
}
