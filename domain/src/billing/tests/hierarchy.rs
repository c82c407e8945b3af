//! Hierarchies: validation, payers, billed subtrees and convergent invoices over three levels.

use rust_decimal_macros::dec;

use super::*;
use Responsibility::{PaidBy, PaidByParent, SelfPaying};

fn id(s: &str) -> AccountId {
    AccountId::new(s)
}

/// hq -> (north: paid by parent -> n1, n2), (south: self-paying -> s1, s2); all leaves paid by
/// their parent.
fn three_levels() -> Vec<Account> {
    vec![
        account("hq", None, SelfPaying),
        account("north", Some("hq"), PaidByParent),
        account("n1", Some("north"), PaidByParent),
        account("n2", Some("north"), PaidByParent),
        account("south", Some("hq"), SelfPaying),
        account("s1", Some("south"), PaidByParent),
        account("s2", Some("south"), PaidByParent),
    ]
}

fn billed(forest: &Forest, payer: &str) -> Vec<(String, u32)> {
    forest
        .billed_subtree(&id(payer))
        .unwrap()
        .into_iter()
        .map(|b| (b.account.to_string(), b.depth))
        .collect()
}

fn owned(pairs: &[(&str, u32)]) -> Vec<(String, u32)> {
    pairs.iter().map(|(a, d)| (a.to_string(), *d)).collect()
}

#[test]
fn payers_and_billed_subtrees_of_a_three_level_hierarchy() {
    let forest = Forest::new(three_levels()).unwrap();
    forest.validate().unwrap();
    assert_eq!(forest.payer_of(&id("n2")).unwrap(), id("hq"));
    assert_eq!(forest.payer_of(&id("north")).unwrap(), id("hq"));
    assert_eq!(forest.payer_of(&id("s1")).unwrap(), id("south"));
    assert_eq!(forest.payer_of(&id("south")).unwrap(), id("south"));
    assert_eq!(
        billed(&forest, "hq"),
        owned(&[("hq", 0), ("north", 1), ("n1", 2), ("n2", 2)])
    );
    assert_eq!(
        billed(&forest, "south"),
        owned(&[("south", 0), ("s1", 1), ("s2", 1)])
    );
    assert_eq!(
        forest.billed_subtree(&id("north")).unwrap_err().code(),
        "billing.not_a_payer"
    );
    assert_eq!(
        forest.payers_for_cycle(&BillCycleId::new("monthly-1")),
        vec![id("hq"), id("south")]
    );
    assert!(
        forest
            .payers_for_cycle(&BillCycleId::new("weekly"))
            .is_empty()
    );
    let plan = forest.billing_plan().unwrap();
    assert_eq!(plan.len(), 2);
    assert_eq!(plan[&id("south")].len(), 3);
}

#[test]
fn an_explicit_payer_must_be_an_ancestor() {
    let forest = Forest::new(three_levels()).unwrap();
    // s2 paid by hq directly, skipping the self-paying south.
    let s2 = account("s2", Some("south"), PaidBy { account: id("hq") });
    forest.validate_change(&s2).unwrap();
    let forest = forest.with_change(s2);
    assert_eq!(forest.payer_of(&id("s2")).unwrap(), id("hq"));
    assert_eq!(
        billed(&forest, "hq"),
        owned(&[("hq", 0), ("north", 1), ("n1", 2), ("n2", 2), ("s2", 2)])
    );
    assert_eq!(billed(&forest, "south"), owned(&[("south", 0), ("s1", 1)]));
    // A child paying for its parent, a cousin, or itself: refused.
    for payer in ["n1", "north", "s2"] {
        let south = account("south", Some("hq"), PaidBy { account: id(payer) });
        let err = forest.validate_change(&south).unwrap_err();
        assert_eq!(err.code(), "hierarchy.payer_not_ancestor", "{payer}");
    }
}

#[test]
fn changes_that_break_the_rules_are_refused_with_their_code() {
    let forest = Forest::new(three_levels()).unwrap();
    let cases = [
        (account("hq", Some("n1"), SelfPaying), "hierarchy.cycle"),
        (
            account("north", Some("north"), PaidByParent),
            "hierarchy.cycle",
        ),
        (
            account("n3", Some("west"), PaidByParent),
            "hierarchy.unknown_parent",
        ),
        (
            account("hq", None, PaidByParent),
            "hierarchy.root_paid_by_parent",
        ),
        (
            account("solo", None, PaidBy { account: id("hq") }),
            "hierarchy.payer_not_ancestor",
        ),
    ];
    for (change, code) in cases {
        let err = forest.validate_change(&change).unwrap_err();
        assert_eq!(err.code(), code, "{change:?}");
    }
    // A paid-by-parent child must share its payer's currency...
    let mut usd = account("n3", Some("north"), PaidByParent);
    usd.currency = Currency::USD;
    let err = forest.validate_change(&usd).unwrap_err();
    assert_eq!(err.code(), "hierarchy.currency_mismatch");
    // ... but a self-paying one has its own invoice and may differ.
    usd.responsibility = SelfPaying;
    forest.validate_change(&usd).unwrap();
    // South becoming paid by parent pulls s1 and s2 onto hq's invoice: currencies must agree.
    let mut forest = forest;
    for leaf in ["s1", "s2"] {
        let mut a = account(leaf, Some("south"), PaidByParent);
        a.currency = Currency::USD;
        forest = forest.with_change(a);
    }
    let mut south = account("south", Some("hq"), SelfPaying);
    south.currency = Currency::USD;
    forest = forest.with_change(south.clone());
    forest.validate().unwrap();
    south.responsibility = PaidByParent;
    south.currency = Currency::EUR;
    let err = forest.validate_change(&south).unwrap_err();
    assert_eq!(err.code(), "hierarchy.currency_mismatch");
    // Duplicates are refused when indexing.
    let err = Forest::new([
        account("a", None, SelfPaying),
        account("a", None, SelfPaying),
    ]);
    assert_eq!(err.unwrap_err().code(), "hierarchy.duplicate_account");
}

#[test]
fn depth_is_unlimited() {
    // A chain of 10,000 accounts, each paid by its parent: one invoice with 10,000 sections.
    let n = 10_000;
    let name = |i: usize| format!("acc-{i:05}");
    let accounts = (0..n).map(|i| {
        if i == 0 {
            account(&name(i), None, SelfPaying)
        } else {
            account(&name(i), Some(&name(i - 1)), PaidByParent)
        }
    });
    let forest = Forest::new(accounts).unwrap();
    forest.validate().unwrap();
    let last = id(&name(n - 1));
    assert_eq!(forest.payer_of(&last).unwrap(), id(&name(0)));
    let subtree = forest.billed_subtree(&id(&name(0))).unwrap();
    assert_eq!(subtree.len(), n);
    assert_eq!(subtree[n - 1].account, last);
    assert_eq!(subtree[n - 1].depth, (n - 1) as u32);
    // Closing the loop at the bottom is found without recursion.
    let loop_back = account(&name(0), Some(&name(n - 1)), SelfPaying);
    assert_eq!(
        forest.validate_change(&loop_back).unwrap_err().code(),
        "hierarchy.cycle"
    );
    // The same chain, every account paying for itself: 10,000 one-section invoices.
    let forest = Forest::new((0..n).map(|i| {
        account(
            &name(i),
            (i > 0).then(|| name(i - 1)).as_deref(),
            SelfPaying,
        )
    }))
    .unwrap();
    let plan = forest.billing_plan().unwrap();
    assert_eq!(plan.len(), n);
    assert!(plan.values().all(|accounts| accounts.len() == 1));
    // And as one invoice.
    let chain: Vec<AccountCharges> = (0..n)
        .map(|i| {
            let parent = (i > 0).then(|| name(i - 1));
            let responsibility = if i == 0 { SelfPaying } else { PaidByParent };
            charges(
                account(&name(i), parent.as_deref(), responsibility),
                Vec::new(),
            )
        })
        .collect();
    let invoice = build_invoice(&input(&name(0), november(), chain)).unwrap();
    assert_eq!(invoice.sections.len(), n);
    assert_eq!(invoice.sections[n - 1].depth, (n - 1) as u32);
}

#[test]
fn three_level_hierarchy_bills_each_account_on_exactly_one_invoice() {
    let accounts = three_levels();
    let forest = Forest::new(accounts.clone()).unwrap();
    // Every account has a 10.00 fee for all of November (in arrears) -> 10.00 per section.
    let all: Vec<AccountCharges> = accounts
        .iter()
        .map(|a| {
            let sub = subscription(
                &format!("sub-{}", a.id),
                a.id.as_str(),
                &["fee"],
                day(2026, 10, 1),
            );
            charges(a.clone(), vec![sub])
        })
        .collect();
    let for_payer = |payer: &str| -> Vec<AccountCharges> {
        let ids: Vec<AccountId> = forest
            .billed_subtree(&id(payer))
            .unwrap()
            .into_iter()
            .map(|b| b.account)
            .collect();
        all.iter()
            .filter(|c| ids.contains(&c.account.id))
            .cloned()
            .collect()
    };

    let hq = build_invoice(&input("hq", november(), for_payer("hq"))).unwrap();
    let sections: Vec<(&str, u32)> = hq
        .sections
        .iter()
        .map(|s| (s.account.as_str(), s.depth))
        .collect();
    assert_eq!(sections, [("hq", 0), ("north", 1), ("n1", 2), ("n2", 2)]);
    assert_eq!(hq.sections[2].customer_name, "Site n1");
    // 4 x 10.00 = 40.00 net; 20 % = 8.00; 48.00 gross.
    assert_eq!(hq.totals.subtotal.money, eur(dec!(40.00)));
    assert_eq!(hq.totals.net.minor, 4000);
    assert_eq!(hq.totals.tax.minor, 800);
    assert_eq!(hq.totals.gross.minor, 4800);

    // The self-paying region: its own invoice with its own children, 3 x 10.00 = 30.00 + 6.00.
    let south = build_invoice(&input("south", november(), for_payer("south"))).unwrap();
    let sections: Vec<&str> = south.sections.iter().map(|s| s.account.as_str()).collect();
    assert_eq!(sections, ["south", "s1", "s2"]);
    assert_eq!(south.totals.gross.minor, 3600);

    // None in two invoices, none missing.
    let mut seen: Vec<&str> = hq
        .sections
        .iter()
        .chain(&south.sections)
        .map(|s| s.account.as_str())
        .collect();
    seen.sort_unstable();
    let mut expected: Vec<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(seen, expected);

    // Giving hq's invoice an account it does not pay for (with charges) is refused; the
    // self-paying south may be present without charges to connect s2 paid by hq.
    let mut wrong = for_payer("hq");
    wrong.push(all[5].clone());
    wrong.push(charges(accounts[4].clone(), Vec::new()));
    let err = build_invoice(&input("hq", november(), wrong)).unwrap_err();
    assert_eq!(err.code(), "billing.not_billed_by_payer");
    // Billing a paid-for account as if it were a payer is refused.
    let err = build_invoice(&input("north", november(), for_payer("hq"))).unwrap_err();
    assert_eq!(err.code(), "billing.not_a_payer");
}
