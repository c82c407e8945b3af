//! Property tests: every account is on exactly one invoice; invoice totals always add up.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::ids::DiscountId;

/// Builds a valid forest from raw choices: account `i` hangs under an earlier account or is a
/// root, and is self-paying, paid by its parent, or paid by a random ancestor.
fn forest_from(choices: &[(u16, u8, u16)]) -> Vec<Account> {
    let name = |i: usize| format!("{:02x}-{i}", (i * 37) % 256);
    let mut parents: Vec<Option<usize>> = Vec::new();
    let mut accounts = Vec::new();
    for (i, (parent, kind, pick)) in choices.iter().enumerate() {
        let parent = (i > 0 && *parent % 5 != 0).then(|| usize::from(*parent) % i);
        parents.push(parent);
        let responsibility = match (parent, kind % 3) {
            (None, _) | (_, 0) => Responsibility::SelfPaying,
            (Some(_), 1) => Responsibility::PaidByParent,
            (Some(p), _) => {
                let mut ancestors = vec![p];
                while let Some(up) = parents[*ancestors.last().unwrap()] {
                    ancestors.push(up);
                }
                let chosen = ancestors[usize::from(*pick) % ancestors.len()];
                Responsibility::PaidBy {
                    account: AccountId::new(name(chosen)),
                }
            }
        };
        accounts.push(account(
            &name(i),
            parent.map(name).as_deref(),
            responsibility,
        ));
    }
    accounts
}

proptest! {
    #[test]
    fn every_account_is_billed_by_exactly_one_payer(
        choices in prop::collection::vec((any::<u16>(), any::<u8>(), any::<u16>()), 1..80)
    ) {
        let accounts = forest_from(&choices);
        let forest = Forest::new(accounts.clone()).unwrap();
        prop_assert!(forest.validate().is_ok());
        let plan = forest.billing_plan().unwrap();
        let mut billed_by: BTreeMap<AccountId, AccountId> = BTreeMap::new();
        for (payer, billed) in &plan {
            prop_assert_eq!(&billed[0].account, payer);
            prop_assert_eq!(billed[0].depth, 0);
            prop_assert_eq!(&forest.billed_subtree(payer).unwrap(), billed);
            for entry in billed {
                prop_assert!(billed_by.insert(entry.account.clone(), payer.clone()).is_none(),
                    "{} is on two invoices", entry.account);
            }
        }
        prop_assert_eq!(billed_by.len(), accounts.len());
        for account in &accounts {
            prop_assert_eq!(&forest.payer_of(&account.id).unwrap(), &billed_by[&account.id]);
        }
        let mut payers: Vec<AccountId> = plan.keys().cloned().collect();
        payers.sort();
        prop_assert_eq!(forest.payers_for_cycle(&BillCycleId::new("monthly-1")), payers);
    }
}

/// (activation day offset from 1 Oct, suspension day, resume day, deactivation day, items)
type SubChoice = (u8, Option<u8>, Option<u8>, Option<u8>, Vec<u8>);

fn sub_from(id: &str, account: &str, choice: &SubChoice) -> Subscription {
    let base = day(2026, 10, 1);
    let at = |offset: u8| crate::billing::cycle::add_days(base, i64::from(offset)).unwrap();
    let items = ["fee", "fee-adv", "router", "setup"];
    let codes: Vec<&str> = choice
        .4
        .iter()
        .map(|i| items[usize::from(*i) % items.len()])
        .collect();
    let mut s = subscription(id, account, &codes, at(choice.0));
    let mut last = choice.0;
    for (status, offset) in [
        (SubscriptionStatus::Suspended, choice.1),
        (SubscriptionStatus::Active, choice.2),
        (SubscriptionStatus::Deactivated, choice.3),
    ] {
        if let Some(offset) = offset {
            let on = last.saturating_add(offset);
            // Illegal or backdated transitions are refused and leave the history alone.
            if s.transition(status, at(on)).is_ok() {
                last = on;
            }
        }
    }
    s
}

fn discount_from(i: usize, (kind, value, scope): (u8, u16, u8)) -> DiscountDefinition {
    let value = if kind % 2 == 0 {
        DiscountValue::Percentage {
            percent: Decimal::from(value % 150),
        }
    } else {
        DiscountValue::Fixed {
            amounts: [(Currency::EUR, Decimal::new(i64::from(value), 2))]
                .into_iter()
                .collect(),
        }
    };
    let scope = match scope % 5 {
        0 => DiscountScope::Item {
            code: ItemCode::new("fee"),
        },
        1 => DiscountScope::Product {
            code: "mobile-s".into(),
        },
        2 => DiscountScope::Subscription,
        3 => DiscountScope::Account,
        _ => DiscountScope::Invoice,
    };
    DiscountDefinition {
        id: DiscountId::new(format!("d{i}")),
        name: format!("d{i}"),
        value,
        scope,
        min_amount: None,
        min_usage: None,
        valid_from: None,
        valid_to: None,
    }
}

fn sum(values: impl IntoIterator<Item = i64>) -> i64 {
    values.into_iter().sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn invoice_totals_always_add_up(
        sites in prop::collection::vec(
            (
                prop::collection::vec(
                    (0u8..70, prop::option::of(0u8..40), prop::option::of(0u8..20),
                     prop::option::of(0u8..60), prop::collection::vec(any::<u8>(), 0..4)),
                    0..3,
                ),
                prop::collection::vec((0u8..3, -500i64..1_000_000), 0..3),
                prop::collection::vec(any::<u8>(), 0..3),
            ),
            1..5,
        ),
        discounts in prop::collection::vec((any::<u8>(), any::<u16>(), any::<u8>()), 0..6),
        inclusive in any::<bool>(),
        month in 10i8..13,
    ) {
        let definitions: Vec<DiscountDefinition> =
            discounts.iter().enumerate().map(|(i, d)| discount_from(i, *d)).collect();
        let mut accounts = Vec::new();
        for (i, (subs, usages, attached)) in sites.iter().enumerate() {
            let name = format!("site{i}");
            let mut a = if i == 0 {
                account(&name, None, Responsibility::SelfPaying)
            } else {
                account(&name, Some("site0"), Responsibility::PaidByParent)
            };
            let pick = |k: &u8| DiscountId::new(format!("d{}", usize::from(*k) % definitions.len().max(1)));
            if !definitions.is_empty() {
                a.discounts = attached.iter().map(pick).collect();
            }
            let mut subscriptions: Vec<Subscription> = subs
                .iter()
                .enumerate()
                .map(|(j, c)| sub_from(&format!("{name}-s{j}"), &name, c))
                .collect();
            if let (Some(first), false) = (subscriptions.first_mut(), definitions.is_empty()) {
                first.discounts = attached.iter().rev().map(pick).collect();
            }
            let mut section = charges(a, subscriptions);
            for (service, minor4) in usages {
                // Usage at charge precision (4 decimals), possibly a small credit.
                let amount = eur(Decimal::new(*minor4, 4));
                section.usage.push(usage(["voice", "sms", "data"][usize::from(*service)], amount));
            }
            accounts.push(section);
        }
        let period = Period::new(day(2026, month, 1), day(2026, month, 1).last_of_month().tomorrow().unwrap()).unwrap();
        let mut input = input("site0", period, accounts);
        input.discounts = definitions;
        if inclusive {
            input.tax_scheme = inclusive_scheme();
        }
        // Everything is priced in EUR with FR rates here: no refusal is expected.
        let invoice = build_invoice(&input)
            .map_err(|err| TestCaseError::fail(format!("refused: {err} ({})", err.code())))?;
        for section in &invoice.sections {
            let total = sum(section.usage.iter().map(|u| u.amount.minor))
                + sum(section.fees.iter().map(|f| f.amount.minor))
                + sum(section.discounts.iter().map(|d| d.amount.minor));
            prop_assert_eq!(section.total.minor, total);
            for d in &section.discounts {
                prop_assert!(d.amount.minor < 0 && -d.amount.minor <= d.base.minor);
                prop_assert_eq!(sum(d.allocation.iter().map(|s| s.amount.minor)), d.amount.minor);
            }
        }
        for d in &invoice.discounts {
            prop_assert!(d.amount.minor < 0 && -d.amount.minor <= d.base.minor);
        }
        let totals = invoice.totals;
        let sections = sum(invoice.sections.iter().map(|s| s.total.minor));
        let invoice_discounts = sum(invoice.discounts.iter().map(|d| d.amount.minor));
        prop_assert_eq!(totals.subtotal.minor, sections + invoice_discounts);
        prop_assert_eq!(sum(invoice.tax_lines.iter().map(|t| t.base.minor)), totals.subtotal.minor);
        prop_assert_eq!(sum(invoice.tax_lines.iter().map(|t| t.tax.minor)), totals.tax.minor);
        prop_assert_eq!(totals.net.minor + totals.tax.minor, totals.gross.minor);
        if !inclusive {
            prop_assert_eq!(totals.net.minor, totals.subtotal.minor);
        }
        // Discounts never make a positive invoice negative.
        if sections >= 0 {
            prop_assert!(totals.subtotal.minor >= 0);
        }
        for amount in [totals.subtotal, totals.net, totals.tax, totals.gross] {
            prop_assert_eq!(amount.money.to_minor().unwrap(), amount.minor);
        }
        prop_assert_eq!(invoice.sections.len(), sites.len());
        // Same input, same invoice.
        prop_assert_eq!(&build_invoice(&input).unwrap(), &invoice);
    }
}
