//! Dunning engine tests, all with dates: day N is 2026-01-01 + (N - 1) days (day 10 is
//! 2026-01-10, day 40 is 2026-02-09, day 70 is 2026-03-11).

use std::collections::BTreeMap;

use rust_decimal_macros::dec;

use super::*;
use crate::billing::BillingSetup;
use crate::billing::run::Invoice;
use crate::finance::allocation::fixtures::{acc, day, eur, invoice, noon, payment};
use crate::finance::allocation::{allocate, invoice_balances};
use crate::finance::payment::{Payment, PaymentMethod};
use crate::money::Currency;

/// Day `n` of 2026.
fn d(n: i16) -> Date {
    day(2026, 1, 1)
        .checked_add(jiff::Span::new().days(i64::from(n) - 1))
        .unwrap()
}

const SMS: &str = "Dear {customer}, invoice {invoice} of {amount} {currency} was due on {due_on} \
                   ({days_overdue} days ago). {unknown}";

fn step(id: &str, after_days: u32, action: DunningAction) -> DunningStep {
    DunningStep {
        id: id.into(),
        after_days,
        action,
    }
}

/// sms after 5 days, a 2 % penalty after 15, suspend after 30, disconnect after 60.
fn policy() -> DunningPolicy {
    DunningPolicy {
        id: "standard".into(),
        name: "Standard".into(),
        credit_classes: Vec::new(),
        pay_by_days: 9,
        steps: vec![
            step(
                "sms",
                5,
                DunningAction::Notify {
                    channel: Channel::Sms,
                    template: SMS.into(),
                },
            ),
            step(
                "penalty",
                15,
                DunningAction::Penalty {
                    value: PenaltyValue::Percent(dec!(2)),
                },
            ),
            step("suspend", 30, DunningAction::Suspend),
            step("disconnect", 60, DunningAction::Disconnect),
        ],
    }
}

/// What the store would hold for `acc-1`, fed back into every run.
struct Account {
    invoices: Vec<Invoice>,
    payments: Vec<Payment>,
    entries: Vec<ArEntry>,
    cases: Vec<DunningCase>,
    state: AccountDunning,
    policy: DunningPolicy,
    /// (day, invoice, step, action) of every step applied.
    log: Vec<(Date, String, String, String)>,
}

impl Account {
    /// One invoice of 100.00 issued on day 1, due on day 10.
    fn new() -> Account {
        Account {
            invoices: vec![invoice("INV-2026-000001", d(1), Some(d(10)), dec!(100.00))],
            payments: Vec::new(),
            entries: Vec::new(),
            cases: Vec::new(),
            state: AccountDunning::new(acc()),
            policy: policy(),
            log: Vec::new(),
        }
    }

    fn balances(&self) -> Vec<InvoiceBalance> {
        invoice_balances(&self.invoices, &self.payments, &self.entries, 14).unwrap()
    }

    fn plan(&self, as_of: Date) -> CollectPlan {
        let balances = self.balances();
        let account = acc();
        plan_collection(&CollectInput {
            account: &account,
            customer_name: "Ada Lovelace",
            policy: &self.policy,
            balances: &balances,
            cases: &self.cases,
            state: &self.state,
            as_of,
            run: "cr-1",
            now: noon(as_of),
        })
        .unwrap()
    }

    fn store_cases(&mut self, cases: Vec<DunningCase>) {
        for case in cases {
            match self.cases.iter_mut().find(|c| c.invoice == case.invoice) {
                Some(stored) => *stored = case,
                None => self.cases.push(case),
            }
        }
    }

    /// Runs collection as of `as_of` and stores what it planned.
    fn collect(&mut self, as_of: Date) -> CollectPlan {
        let plan = self.plan(as_of);
        self.store_cases(plan.cases.clone());
        self.entries.extend(plan.penalties.iter().cloned());
        if plan.suspend {
            self.state.suspended = true;
        }
        if plan.disconnect {
            self.state.disconnected = true;
        }
        for (invoice, step, action) in &plan.applied {
            self.log.push((
                as_of,
                invoice.to_string(),
                step.to_string(),
                action.to_string(),
            ));
        }
        plan
    }

    fn steps(&self) -> Vec<(Date, &str)> {
        self.log
            .iter()
            .map(|(on, _, s, _)| (*on, s.as_str()))
            .collect()
    }
}

#[test]
fn daily_runs_apply_each_step_once_on_its_day() {
    let mut account = Account::new();
    for n in 11..=70 {
        let plan = account.collect(d(n));
        // A second pass on the same day applies nothing.
        let again = account.plan(d(n));
        assert!(
            again.is_empty() && again.applied.is_empty(),
            "day {n}: {again:?}"
        );
        if n == 15 {
            // Outstanding 100.00, due on 2026-01-10, 15 - 10 = 5 days overdue.
            assert_eq!(
                plan.notices,
                [Notice {
                    invoice: "INV-2026-000001".into(),
                    step: "sms".into(),
                    channel: Channel::Sms,
                    body: "Dear Ada Lovelace, invoice INV-2026-000001 of 100.00 EUR was due on \
                           2026-01-10 (5 days ago). {unknown}"
                        .into(),
                }]
            );
        }
        if n == 25 {
            // 2 % of 100.00 = 2.00, dated the step's due day.
            assert_eq!(plan.penalties.len(), 1);
            let penalty = &plan.penalties[0];
            assert_eq!(penalty.key, "dunning:INV-2026-000001:penalty");
            assert_eq!(penalty.kind, ArKind::Penalty);
            assert_eq!(penalty.document, "INV-2026-000001");
            assert_eq!(penalty.invoice.as_deref(), Some("INV-2026-000001"));
            assert_eq!(penalty.amount, eur(dec!(2.00)));
            assert_eq!(penalty.on, d(25));
            assert_eq!(penalty.at, noon(d(25)));
        }
        assert_eq!(plan.suspend, n == 40, "day {n}");
        assert_eq!(plan.disconnect, n == 70, "day {n}");
    }
    assert_eq!(
        account.steps(),
        [
            (d(15), "sms"),
            (d(25), "penalty"),
            (d(40), "suspend"),
            (d(70), "disconnect"),
        ]
    );
    // 100.00 + 2.00 penalty.
    assert_eq!(account.balances()[0].outstanding(), eur(dec!(102.00)));
    assert_eq!(account.entries.len(), 1);
    let case = &account.cases[0];
    assert_eq!(account.cases.len(), 1);
    assert_eq!(
        (case.policy.as_str(), case.due_on, case.settled_on),
        ("standard", d(10), None)
    );
    let recorded: Vec<(&str, &str, Date, Date)> = case
        .applied
        .iter()
        .map(|a| (a.step.as_str(), a.action.as_str(), a.due_on, a.applied_on))
        .collect();
    assert_eq!(
        recorded,
        [
            ("sms", "notify", d(15), d(15)),
            ("penalty", "penalty", d(25), d(25)),
            ("suspend", "suspend", d(40), d(40)),
            ("disconnect", "disconnect", d(70), d(70)),
        ]
    );
    assert_eq!(case.applied[0].detail, "dunning:acc-1:INV-2026-000001:sms");
    assert_eq!(case.applied[1].detail, "penalty 2.00 EUR");
    assert!(case.applied.iter().all(|a| a.run == "cr-1"));
}

#[test]
fn the_first_overdue_day_opens_a_case_without_steps() {
    let mut account = Account::new();
    // Day 10 is the due date: not overdue yet.
    assert!(account.collect(d(10)).is_empty());
    let plan = account.collect(d(11));
    assert_eq!(plan.cases.len(), 1);
    assert!(plan.cases[0].applied.is_empty() && plan.applied.is_empty());
    assert!(account.plan(d(11)).is_empty());
}

#[test]
fn paying_everything_settles_the_case_and_resumes_service() {
    let mut account = Account::new();
    for n in 11..=40 {
        account.collect(d(n));
    }
    assert!(account.state.suspended);
    // Day 41: 102.00 received (100.00 + the 2.00 penalty), allocated oldest first.
    let mut paid = payment("pay-1", dec!(102.00), d(41), PaymentMethod::Cash);
    paid.cashier = Some("desk-1".into());
    paid.allocations = allocate(paid.amount, &account.balances(), None, noon(d(41))).unwrap();
    assert_eq!(paid.unallocated(), eur(dec!(0.00)));
    account.payments.push(paid);
    let settlement = settle(&account.balances(), &account.cases, &account.state, d(41));
    assert!(settlement.resume);
    assert_eq!(settlement.cases.len(), 1);
    assert_eq!(settlement.cases[0].settled_on, Some(d(41)));
    account.store_cases(settlement.cases);
    account.state.suspended = false;
    // Settling again changes nothing.
    let again = settle(&account.balances(), &account.cases, &account.state, d(41));
    assert!(again.cases.is_empty() && !again.resume);
    for n in 41..=80 {
        assert!(account.collect(d(n)).is_empty(), "day {n}");
    }
    assert_eq!(
        account.steps(),
        [(d(15), "sms"), (d(25), "penalty"), (d(40), "suspend")]
    );
    assert!(!account.state.disconnected);
}

#[test]
fn one_late_run_catches_up_with_every_step_in_order() {
    let mut account = Account::new();
    let plan = account.collect(d(70));
    let applied: Vec<(&str, &str)> = plan
        .applied
        .iter()
        .map(|(_, s, a)| (s.as_str(), a.as_str()))
        .collect();
    assert_eq!(
        applied,
        [
            ("sms", "notify"),
            ("penalty", "penalty"),
            ("suspend", "suspend"),
            ("disconnect", "disconnect"),
        ]
    );
    // The notice is sent before the penalty: 100.00, 70 - 10 = 60 days overdue.
    assert!(plan.notices[0].body.contains("of 100.00 EUR"));
    assert!(plan.notices[0].body.contains("(60 days ago)"));
    // 2 % of 100.00 = 2.00, dated its own due day (day 25).
    assert_eq!(plan.penalties[0].amount, eur(dec!(2.00)));
    assert_eq!(plan.penalties[0].on, d(25));
    assert!(plan.suspend && plan.disconnect);
    let dues: Vec<Date> = plan.cases[0].applied.iter().map(|a| a.due_on).collect();
    assert_eq!(dues, [d(15), d(25), d(40), d(70)]);
    assert!(plan.cases[0].applied.iter().all(|a| a.applied_on == d(70)));
    assert!(account.plan(d(70)).is_empty());
}

#[test]
fn a_penalty_raises_the_outstanding_of_later_steps_in_the_same_run() {
    let mut account = Account::new();
    account.policy.steps = vec![
        step(
            "first",
            1,
            DunningAction::Penalty {
                value: PenaltyValue::Percent(dec!(10)),
            },
        ),
        step(
            "letter",
            2,
            DunningAction::Notify {
                channel: Channel::Email,
                template: "{amount} {currency}".into(),
            },
        ),
        step(
            "second",
            3,
            DunningAction::Penalty {
                value: PenaltyValue::Percent(dec!(10)),
            },
        ),
    ];
    let plan = account.collect(d(20));
    // 10 % of 100.00 = 10.00; the letter says 110.00; 10 % of 110.00 = 11.00.
    let amounts: Vec<Money> = plan.penalties.iter().map(|p| p.amount).collect();
    assert_eq!(amounts, [eur(dec!(10.00)), eur(dec!(11.00))]);
    assert_eq!(plan.notices[0].body, "110.00 EUR");
    assert_eq!(plan.notices[0].channel, Channel::Email);
}

#[test]
fn two_overdue_invoices_suspend_the_account_once() {
    let mut account = Account::new();
    account
        .invoices
        .push(invoice("INV-2026-000002", d(2), Some(d(11)), dec!(10.00)));
    let plan = account.collect(d(45));
    assert!(plan.suspend);
    let suspends: Vec<String> = plan
        .cases
        .iter()
        .flat_map(|c| c.applied.iter())
        .filter(|a| a.action == "suspend")
        .map(|a| a.detail.clone())
        .collect();
    assert_eq!(suspends, ["service suspended", "already suspended"]);
    // Invoice 1 paid, invoice 2 still overdue: its case stays open and service stays off.
    let mut paid = payment("pay-1", dec!(102.00), d(46), PaymentMethod::Advance);
    paid.allocations = allocate(paid.amount, &account.balances(), None, noon(d(46))).unwrap();
    assert_eq!(paid.allocations.len(), 1);
    account.payments.push(paid);
    let settlement = settle(&account.balances(), &account.cases, &account.state, d(46));
    assert_eq!(settlement.cases.len(), 1);
    assert_eq!(settlement.cases[0].invoice, "INV-2026-000001");
    assert!(!settlement.resume);
    // A disconnected account never resumes.
    account.state.disconnected = true;
    let balances = invoice_balances(
        &account.invoices[..1],
        &account.payments,
        &account.entries,
        14,
    )
    .unwrap();
    assert!(!settle(&balances, &account.cases, &account.state, d(46)).resume);
}

#[test]
fn due_steps_order_by_days_then_policy_order() {
    let mut p = policy();
    p.steps = vec![
        step("late", 30, DunningAction::Suspend),
        step(
            "mail",
            5,
            DunningAction::Notify {
                channel: Channel::Email,
                template: "x".into(),
            },
        ),
        step(
            "sms",
            5,
            DunningAction::Notify {
                channel: Channel::Sms,
                template: "x".into(),
            },
        ),
        step(
            "fee",
            0,
            DunningAction::Penalty {
                value: PenaltyValue::Percent(dec!(1)),
            },
        ),
    ];
    let due = due_steps(&p, d(10), d(40), &[]);
    let ids: Vec<(&str, Date)> = due.iter().map(|(s, on)| (s.id.as_str(), *on)).collect();
    assert_eq!(
        ids,
        [
            ("fee", d(10)),
            ("mail", d(15)),
            ("sms", d(15)),
            ("late", d(40))
        ]
    );
    // Day 39: the suspension is not due yet; an applied step is not due again.
    let applied = AppliedStep {
        step: "mail".into(),
        action: "notify".into(),
        due_on: d(15),
        applied_on: d(15),
        at: noon(d(15)),
        run: "cr-0".into(),
        detail: String::new(),
    };
    let due = due_steps(&p, d(10), d(39), &[applied]);
    let ids: Vec<&str> = due.iter().map(|(s, _)| s.id.as_str()).collect();
    assert_eq!(ids, ["fee", "sms"]);
}

#[test]
fn penalties_round_half_up_and_fixed_ones_need_the_currency() {
    // 2 % of 10.25 = 0.205 -> 0.21.
    let percent = PenaltyValue::Percent(dec!(2));
    assert_eq!(
        penalty_amount(&percent, eur(dec!(10.25))).unwrap(),
        eur(dec!(0.21))
    );
    // 1.5 % of 33.33 = 0.49995 -> 0.50.
    let percent = PenaltyValue::Percent(dec!(1.5));
    assert_eq!(
        penalty_amount(&percent, eur(dec!(33.33))).unwrap(),
        eur(dec!(0.50))
    );
    let fixed = PenaltyValue::Fixed(BTreeMap::from([(Currency::EUR, dec!(5))]));
    assert_eq!(
        penalty_amount(&fixed, eur(dec!(80))).unwrap(),
        eur(dec!(5.00))
    );
    let err = penalty_amount(&fixed, Money::new(dec!(80), Currency::USD)).unwrap_err();
    assert_eq!(err.code(), "dunning.invalid_policy");
    // Through a collection the error names the policy.
    let mut account = Account::new();
    account.policy.steps = vec![step(
        "fee",
        1,
        DunningAction::Penalty {
            value: PenaltyValue::Fixed(BTreeMap::from([(Currency::USD, dec!(5))])),
        },
    )];
    let balances = account.balances();
    let err = plan_collection(&CollectInput {
        account: &acc(),
        customer_name: "Ada",
        policy: &account.policy,
        balances: &balances,
        cases: &[],
        state: &account.state,
        as_of: d(20),
        run: "cr-1",
        now: noon(d(20)),
    })
    .unwrap_err();
    assert!(
        matches!(err, FinanceError::InvalidPolicy { ref policy, .. } if policy == "standard"),
        "{err:?}"
    );
}

#[test]
fn render_replaces_known_placeholders_only() {
    let vars = [("name", "Ada".to_string()), ("n", "3".to_string())];
    assert_eq!(
        render("Hi {name}, {n} {other} {", &vars),
        "Hi Ada, 3 {other} {"
    );
    assert_eq!(render("{{name}} {name", &vars), "{Ada} {name");
    assert_eq!(render("", &vars), "");
    // Values are not rendered again.
    assert_eq!(
        render("{a}", &[("a", "{b}".into()), ("b", "x".into())]),
        "{b}"
    );
}

#[test]
fn find_policy_by_credit_class_else_the_default() {
    let mut gold = policy();
    gold.id = "gold".into();
    gold.credit_classes = vec!["gold".into(), "vip".into()];
    let policies = [gold, policy()];
    assert_eq!(
        find_policy(&policies, Some("vip")).map(|p| p.id.as_str()),
        Some("gold")
    );
    assert_eq!(
        find_policy(&policies, Some("bronze")).map(|p| p.id.as_str()),
        Some("standard")
    );
    assert_eq!(
        find_policy(&policies, None).map(|p| p.id.as_str()),
        Some("standard")
    );
    assert!(find_policy(&policies[..1], None).is_none());
}

#[test]
fn policy_problems_are_reported_with_their_paths() {
    let mut dup = policy();
    dup.steps.push(step("sms", 7, DunningAction::Suspend));
    let mut bad = policy();
    bad.credit_classes = vec!["gold".into()];
    bad.steps = vec![
        step(
            "zero",
            1,
            DunningAction::Penalty {
                value: PenaltyValue::Percent(dec!(0)),
            },
        ),
        step(
            "big",
            2,
            DunningAction::Penalty {
                value: PenaltyValue::Percent(dec!(100.01)),
            },
        ),
        step(
            "fine",
            3,
            DunningAction::Penalty {
                value: PenaltyValue::Fixed(BTreeMap::from([
                    (Currency::EUR, dec!(1.005)),
                    (Currency::USD, dec!(0)),
                ])),
            },
        ),
        step(
            "none",
            4,
            DunningAction::Penalty {
                value: PenaltyValue::Fixed(BTreeMap::new()),
            },
        ),
        step(
            "blank",
            5,
            DunningAction::Notify {
                channel: Channel::Sms,
                template: " ".into(),
            },
        ),
    ];
    let mut gold = policy();
    gold.id = "gold".into();
    gold.credit_classes = vec!["gold".into()];
    gold.steps.clear();
    let policies = [policy(), dup, bad, gold];
    let problems = validate_policies(&policies).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "[1].id",
            "[1].credit_classes",
            "[1].steps[4].id",
            "[2].id",
            "[2].steps[0].action.value.percent",
            "[2].steps[1].action.value.percent",
            "[2].steps[2].action.value.fixed.EUR",
            "[2].steps[2].action.value.fixed.USD",
            "[2].steps[3].action.value.fixed",
            "[2].steps[4].action.template",
            "[3].credit_classes[0]",
            "[3].steps",
        ]
    );
    assert_eq!(validate_policies(&[policy()]), Ok(()));
    assert_eq!(validate_policies(&[]), Ok(()));
    // The billing setup reports them under `dunning_policies`, with the note template.
    let setup = BillingSetup {
        dunning_policies: policies.to_vec(),
        credit_note_number_template: "CN-{yyyy}".into(),
        ..BillingSetup::default()
    };
    let found = setup.validate().unwrap_err();
    assert!(
        found
            .iter()
            .any(|p| p.path == "dunning_policies[3].steps" && p.code == "dunning.invalid_policy")
    );
    assert!(found.iter().any(
        |p| p.path == "credit_note_number_template" && p.code == "billing.bad_number_template"
    ));
    assert_eq!(found.len(), problems.len() + 1);
    let good = BillingSetup {
        dunning_policies: vec![policy()],
        ..BillingSetup::default()
    };
    assert_eq!(good.validate(), Ok(()));
}

#[test]
fn a_bounced_payment_reopens_the_settled_case_without_repeating_its_steps() {
    let mut account = Account::new();
    for n in 11..=40 {
        account.collect(d(n));
    }
    // Day 41: a cheque of 102.00 settles everything.
    let mut paid = payment("pay-1", dec!(102.00), d(41), PaymentMethod::Cash);
    paid.cashier = Some("desk-1".into());
    paid.allocations = allocate(paid.amount, &account.balances(), None, noon(d(41))).unwrap();
    account.payments.push(paid);
    let settlement = settle(&account.balances(), &account.cases, &account.state, d(41));
    account.store_cases(settlement.cases);
    account.state.suspended = false;
    // Day 50: it bounces; the invoice owes 102.00 again.
    let (reversed, owed) = crate::finance::allocation::plan_reversal(
        &account.payments[0],
        "bounced",
        "desk-1",
        noon(d(50)),
    )
    .unwrap();
    assert_eq!(owed, eur(dec!(102.00)));
    account.payments[0] = reversed;
    for n in 50..=69 {
        account.collect(d(n));
    }
    assert_eq!(account.cases[0].settled_on, None, "the case is open again");
    assert_eq!(
        account.steps(),
        [(d(15), "sms"), (d(25), "penalty"), (d(40), "suspend")],
        "no step is applied twice"
    );
    account.collect(d(70));
    assert_eq!(
        account.steps().last().copied(),
        Some((d(70), "disconnect")),
        "the policy goes on where it stopped"
    );
}
