//! Allocation tests; amounts worked out by hand in the comments.

use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use smol_str::SmolStr;

use super::fixtures::*;
use super::*;
use crate::money::{Currency, Money};

fn transfer() -> PaymentMethod {
    PaymentMethod::Ach {
        reference: SmolStr::new("TRACE-1"),
    }
}

/// Invoices A 100.00 (due Jan 10), B 50.00 (due Feb 10), C 30.00 (due Mar 10), given newest
/// first.
fn three() -> Vec<Invoice> {
    vec![
        invoice(
            "INV-C",
            day(2026, 3, 1),
            Some(day(2026, 3, 10)),
            dec!(30.00),
        ),
        invoice(
            "INV-B",
            day(2026, 2, 1),
            Some(day(2026, 2, 10)),
            dec!(50.00),
        ),
        invoice(
            "INV-A",
            day(2026, 1, 1),
            Some(day(2026, 1, 10)),
            dec!(100.00),
        ),
    ]
}

fn alloc(invoice: &str, amount: Decimal) -> (SmolStr, Money) {
    (SmolStr::new(invoice), eur(amount))
}

fn pairs(allocations: &[Allocation]) -> Vec<(SmolStr, Money)> {
    allocations
        .iter()
        .map(|a| (a.invoice.clone(), a.amount))
        .collect()
}

fn outstanding(balances: &[InvoiceBalance], invoice: &str) -> Decimal {
    balances
        .iter()
        .find(|b| b.invoice == invoice)
        .unwrap()
        .outstanding()
        .amount
}

#[test]
fn balances_count_charges_credits_and_received_payments_only() {
    let invoices = vec![
        // No pay-by date: issued Feb 1 + 14 days of terms = due Feb 15.
        invoice("INV-B", day(2026, 2, 1), None, dec!(50.00)),
        invoice(
            "INV-A",
            day(2026, 1, 1),
            Some(day(2026, 1, 10)),
            dec!(100.00),
        ),
    ];
    let entries = vec![
        entry(
            "pen",
            ArKind::Penalty,
            Some("INV-A"),
            dec!(2.00),
            day(2026, 1, 25),
        ),
        entry(
            "cn",
            ArKind::CreditNote,
            Some("INV-A"),
            dec!(-10.00),
            day(2026, 1, 26),
        ),
        entry(
            "dn",
            ArKind::DebitNote,
            Some("INV-B"),
            dec!(5.00),
            day(2026, 2, 2),
        ),
        // Account-level movements do not touch an invoice's balance.
        entry("pay", ArKind::Payment, None, dec!(-30.00), day(2026, 1, 20)),
        entry(
            "rev",
            ArKind::PaymentReversal,
            None,
            dec!(20.00),
            day(2026, 1, 21),
        ),
    ];
    let mut received = payment("pay-1", dec!(30.00), day(2026, 1, 20), transfer());
    received.allocations.push(Allocation {
        invoice: "INV-A".into(),
        amount: eur(dec!(30.00)),
        at: noon(day(2026, 1, 20)),
    });
    let mut bounced = payment("pay-2", dec!(20.00), day(2026, 1, 20), transfer());
    bounced.allocations.push(Allocation {
        invoice: "INV-A".into(),
        amount: eur(dec!(20.00)),
        at: noon(day(2026, 1, 20)),
    });
    let (bounced, _) = plan_reversal(&bounced, "bounced", "clerk", noon(day(2026, 1, 21))).unwrap();
    let balances = invoice_balances(&invoices, &[received, bounced], &entries, 14).unwrap();
    // Oldest due date first: A (Jan 10) before B (Feb 15).
    assert_eq!(balances[0].invoice, "INV-A");
    assert_eq!(balances[1].invoice, "INV-B");
    assert_eq!(balances[1].due_on, day(2026, 2, 15));
    // A: 100.00 + 2.00 penalty - 10.00 credit note - 30.00 paid (the reversed 20.00 does not
    // count) = 62.00.
    assert_eq!(balances[0].charges, eur(dec!(2.00)));
    assert_eq!(balances[0].credited, eur(dec!(10.00)));
    assert_eq!(balances[0].paid, eur(dec!(30.00)));
    assert_eq!(balances[0].outstanding(), eur(dec!(62.00)));
    // B: 50.00 + 5.00 debit note = 55.00.
    assert_eq!(balances[1].outstanding(), eur(dec!(55.00)));
}

#[test]
fn balances_with_the_same_due_date_sort_by_issue_date_then_number() {
    let due = Some(day(2026, 1, 31));
    let invoices = vec![
        invoice("INV-3", day(2026, 1, 2), due, dec!(1.00)),
        invoice("INV-2", day(2026, 1, 1), due, dec!(1.00)),
        invoice("INV-1", day(2026, 1, 2), due, dec!(1.00)),
    ];
    let balances = invoice_balances(&invoices, &[], &[], 14).unwrap();
    let order: Vec<&str> = balances.iter().map(|b| b.invoice.as_str()).collect();
    assert_eq!(order, ["INV-2", "INV-1", "INV-3"]);
}

#[test]
fn default_allocation_is_oldest_first_and_leaves_the_rest_as_credit() {
    let balances = invoice_balances(&three(), &[], &[], 14).unwrap();
    let at = noon(day(2026, 3, 20));
    // 200.00 pays A 100.00, B 50.00, C 30.00 in due-date order; 200 - 180 = 20.00 stays credit.
    let allocations = allocate(eur(dec!(200.00)), &balances, None, at).unwrap();
    assert_eq!(
        pairs(&allocations),
        [
            alloc("INV-A", dec!(100.00)),
            alloc("INV-B", dec!(50.00)),
            alloc("INV-C", dec!(30.00)),
        ]
    );
    let mut p = payment("pay-1", dec!(200.00), day(2026, 3, 20), transfer());
    p.allocations = allocations;
    assert_eq!(p.unallocated(), eur(dec!(20.00)));
    // 120.00 pays A in full and 20.00 of B; C gets nothing.
    let allocations = allocate(eur(dec!(120.00)), &balances, None, at).unwrap();
    assert_eq!(
        pairs(&allocations),
        [alloc("INV-A", dec!(100.00)), alloc("INV-B", dec!(20.00))]
    );
    // With A paid (outstanding 0) it is skipped: 60.00 -> B 50.00, C 10.00.
    let mut paid = payment("pay-0", dec!(100.00), day(2026, 1, 5), transfer());
    paid.allocations.push(Allocation {
        invoice: "INV-A".into(),
        amount: eur(dec!(100.00)),
        at,
    });
    let balances = invoice_balances(&three(), &[paid], &[], 14).unwrap();
    let allocations = allocate(eur(dec!(60.00)), &balances, None, at).unwrap();
    assert_eq!(
        pairs(&allocations),
        [alloc("INV-B", dec!(50.00)), alloc("INV-C", dec!(10.00))]
    );
    assert!(allocations.iter().all(|a| a.at == at));
}

fn request(invoice: &str, amount: Decimal) -> AllocationRequest {
    AllocationRequest {
        invoice: SmolStr::new(invoice),
        amount,
    }
}

#[test]
fn explicit_allocation_follows_the_request() {
    let balances = invoice_balances(&three(), &[], &[], 14).unwrap();
    let asked = [request("INV-C", dec!(30.00)), request("INV-A", dec!(40))];
    let allocations = allocate(
        eur(dec!(100.00)),
        &balances,
        Some(&asked),
        noon(day(2026, 3, 20)),
    )
    .unwrap();
    // C 30.00 and A 40.00 as asked (B, older than C, gets nothing); 100 - 70 = 30.00 credit.
    assert_eq!(
        pairs(&allocations),
        [alloc("INV-C", dec!(30.00)), alloc("INV-A", dec!(40))]
    );
    // An empty request allocates nothing: the whole payment is credit.
    let none = allocate(
        eur(dec!(100.00)),
        &balances,
        Some(&[]),
        noon(day(2026, 3, 20)),
    )
    .unwrap();
    assert!(none.is_empty());
}

#[test]
fn explicit_allocation_refusals() {
    let balances = invoice_balances(&three(), &[], &[], 14).unwrap();
    let at = noon(day(2026, 3, 20));
    let refuse = |asked: &[AllocationRequest]| {
        allocate(eur(dec!(100.00)), &balances, Some(asked), at)
            .unwrap_err()
            .code()
    };
    assert_eq!(
        refuse(&[request("INV-X", dec!(1))]),
        "payment.unknown_invoice"
    );
    assert_eq!(
        refuse(&[request("INV-A", dec!(1)), request("INV-A", dec!(2))]),
        "payment.duplicate_allocation"
    );
    assert_eq!(
        refuse(&[request("INV-A", dec!(0))]),
        "payment.invalid_amount"
    );
    assert_eq!(
        refuse(&[request("INV-A", dec!(-5))]),
        "payment.invalid_amount"
    );
    // 10.001 is finer than EUR cents.
    assert_eq!(
        refuse(&[request("INV-A", dec!(10.001))]),
        "payment.invalid_amount"
    );
    // C owes 30.00.
    let err = allocate(
        eur(dec!(100.00)),
        &balances,
        Some(&[request("INV-C", dec!(30.01))]),
        at,
    )
    .unwrap_err();
    assert_eq!(
        err,
        FinanceError::AllocationExceedsOutstanding {
            invoice: "INV-C".into(),
            outstanding: "30.00 EUR".into(),
            asked: "30.01 EUR".into(),
        }
    );
    // A 80.00 + B 30.00 = 110.00 > 100.00.
    let err = allocate(
        eur(dec!(100.00)),
        &balances,
        Some(&[request("INV-A", dec!(80.00)), request("INV-B", dec!(30.00))]),
        at,
    )
    .unwrap_err();
    assert_eq!(
        err,
        FinanceError::AllocationExceedsPayment {
            allocated: "110.00 EUR".into(),
            amount: "100.00 EUR".into(),
        }
    );
}

#[test]
fn payment_validation_refusals() {
    let a = acc();
    let ok = |amount: Decimal, method: PaymentMethod, cashier: Option<&str>| {
        validate_payment(&eur(amount), &method, cashier, &a, Currency::EUR)
    };
    let code = |r: Result<(), FinanceError>| r.unwrap_err().code();
    let card = |token: &str| PaymentMethod::Card {
        token: token.into(),
        gateway: Some("stripe".into()),
    };
    assert_eq!(
        validate_payment(
            &Money::new(dec!(10), Currency::USD),
            &transfer(),
            None,
            &a,
            Currency::EUR
        ),
        Err(FinanceError::CurrencyMismatch {
            account: a.clone(),
            given: Currency::USD,
            expected: Currency::EUR,
        })
    );
    assert_eq!(
        code(ok(dec!(0), transfer(), None)),
        "payment.invalid_amount"
    );
    assert_eq!(
        code(ok(dec!(-1), transfer(), None)),
        "payment.invalid_amount"
    );
    assert_eq!(
        code(ok(dec!(1.001), transfer(), None)),
        "payment.invalid_amount"
    );
    assert_eq!(ok(dec!(1.10), transfer(), None), Ok(()));
    // Card numbers (Luhn-valid, 13..=19 digits, spaces and dashes ignored) are refused.
    for pan in [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "378282246310005",
    ] {
        assert_eq!(
            ok(dec!(5), card(pan), None),
            Err(FinanceError::CardNumberRefused),
            "{pan}"
        );
    }
    // Tokens are accepted, including digit strings that fail the Luhn check.
    for token in [
        "tok_1Nv0Q2",
        "tok_4111111111111111",
        "4111111111111112",
        "411111111111",
    ] {
        assert_eq!(ok(dec!(5), card(token), None), Ok(()), "{token}");
    }
    assert_eq!(code(ok(dec!(5), card(" "), None)), "payment.method_details");
    assert_eq!(
        code(ok(dec!(5), PaymentMethod::Cash, None)),
        "payment.method_details"
    );
    assert_eq!(
        code(ok(dec!(5), PaymentMethod::Cash, Some(""))),
        "payment.method_details"
    );
    assert_eq!(ok(dec!(5), PaymentMethod::Cash, Some("desk-3")), Ok(()));
    let empty = [
        PaymentMethod::DirectDebit { mandate: "".into() },
        PaymentMethod::Ach {
            reference: " ".into(),
        },
        PaymentMethod::Cheque {
            number: "".into(),
            bank: None,
        },
        PaymentMethod::Voucher { code: "".into() },
    ];
    for method in empty {
        let err = ok(dec!(5), method.clone(), None).unwrap_err();
        assert_eq!(err.code(), "payment.method_details", "{method:?}");
    }
    assert_eq!(ok(dec!(5), PaymentMethod::Advance, None), Ok(()));
}

#[test]
fn apply_credit_uses_an_earlier_overpayment_on_a_new_invoice() {
    let mut invoices = three();
    // p1 paid 200.00: A, B, C in full, 20.00 credit left. p2 is 40.00 of pure credit.
    let mut p1 = payment("pay-1", dec!(200.00), day(2026, 3, 20), transfer());
    let balances = invoice_balances(&invoices, &[], &[], 14).unwrap();
    p1.allocations = allocate(p1.amount, &balances, None, noon(day(2026, 3, 20))).unwrap();
    let p2 = payment(
        "pay-2",
        dec!(40.00),
        day(2026, 3, 21),
        PaymentMethod::Advance,
    );
    // A reversed payment's credit is never used.
    let mut bounced = payment("pay-3", dec!(500.00), day(2026, 3, 22), transfer());
    bounced.state = PaymentState::Reversed {
        reason: "bounced".into(),
        at: noon(day(2026, 3, 23)),
        by: "clerk".into(),
    };
    invoices.push(invoice(
        "INV-D",
        day(2026, 4, 1),
        Some(day(2026, 4, 10)),
        dec!(50.00),
    ));
    let mut payments = vec![bounced, p1, p2];
    let balances = invoice_balances(&invoices, &payments, &[], 14).unwrap();
    assert_eq!(outstanding(&balances, "INV-D"), dec!(50.00));
    let at = noon(day(2026, 4, 1));
    let changed = apply_credit(&mut payments, &balances, at);
    // D owes 50.00: p1's 20.00 credit first, then 30.00 of p2's 40.00 (10.00 left).
    assert_eq!(changed, [1, 2]);
    assert!(payments[0].allocations.is_empty());
    assert_eq!(
        payments[1]
            .allocations
            .last()
            .map(|a| (a.invoice.clone(), a.amount, a.at)),
        Some(("INV-D".into(), eur(dec!(20.00)), at))
    );
    assert_eq!(payments[1].unallocated(), eur(dec!(0.00)));
    assert_eq!(
        pairs(&payments[2].allocations),
        [alloc("INV-D", dec!(30.00))]
    );
    assert_eq!(payments[2].unallocated(), eur(dec!(10.00)));
    let balances = invoice_balances(&invoices, &payments, &[], 14).unwrap();
    assert_eq!(outstanding(&balances, "INV-D"), dec!(0));
    // Nothing outstanding any more: nothing changes.
    assert!(apply_credit(&mut payments, &balances, at).is_empty());
}

#[test]
fn a_refund_larger_than_the_payment_is_refused() {
    let mut p = payment("pay-1", dec!(100.00), day(2026, 1, 5), transfer());
    p.refunded = eur(dec!(30.00));
    // 100.00 - 30.00 = 70.00 left to refund.
    assert_eq!(
        plan_refund(&p, eur(dec!(70.01))),
        Err(FinanceError::RefundExceedsPayment {
            payment: "pay-1".into(),
            refundable: "70.00 EUR".into(),
            asked: "70.01 EUR".into(),
        })
    );
    assert_eq!(
        plan_refund(&p, eur(dec!(0))).unwrap_err().code(),
        "payment.invalid_amount"
    );
    assert_eq!(
        plan_refund(&p, eur(dec!(1.005))).unwrap_err().code(),
        "payment.invalid_amount"
    );
    assert_eq!(
        plan_refund(&p, Money::new(dec!(1), Currency::USD))
            .unwrap_err()
            .code(),
        "payment.currency_mismatch"
    );
    let (reversed, _) = plan_reversal(&p, "charge-back", "clerk", noon(day(2026, 1, 9))).unwrap();
    assert_eq!(
        plan_refund(&reversed, eur(dec!(1))),
        Err(FinanceError::PaymentReversed("pay-1".into()))
    );
    assert_eq!(
        plan_refund(&p, eur(dec!(70.00))).unwrap().refunded,
        eur(dec!(100.00))
    );
}

#[test]
fn a_refund_takes_credit_first_then_reopens_the_newest_invoice() {
    let invoices = three();
    let balances = invoice_balances(&invoices, &[], &[], 14).unwrap();
    let mut p = payment("pay-1", dec!(200.00), day(2026, 3, 20), transfer());
    // A 100.00, B 50.00, C 30.00, credit 20.00.
    p.allocations = allocate(p.amount, &balances, None, noon(day(2026, 3, 20))).unwrap();
    // 45.00 = the 20.00 credit + 25.00 of C (the newest allocation): C keeps 5.00.
    let refunded = plan_refund(&p, eur(dec!(45.00))).unwrap();
    assert_eq!(refunded.refunded, eur(dec!(45.00)));
    assert_eq!(
        pairs(&refunded.allocations),
        [
            alloc("INV-A", dec!(100.00)),
            alloc("INV-B", dec!(50.00)),
            alloc("INV-C", dec!(5.00)),
        ]
    );
    assert_eq!(refunded.unallocated(), eur(dec!(0.00)));
    let balances = invoice_balances(&invoices, std::slice::from_ref(&refunded), &[], 14).unwrap();
    // C owes 30.00 - 5.00 = 25.00 again.
    assert_eq!(outstanding(&balances, "INV-C"), dec!(25.00));
    assert_eq!(outstanding(&balances, "INV-B"), dec!(0));
    // 60.00 more: C's 5.00, then 50.00 of B (removed), then 5.00 of A.
    let again = plan_refund(&refunded, eur(dec!(60.00))).unwrap();
    assert_eq!(again.refunded, eur(dec!(105.00)));
    assert_eq!(pairs(&again.allocations), [alloc("INV-A", dec!(95.00))]);
    // 200.00 - 105.00 = 95.00 left; 95.01 is refused.
    assert_eq!(
        plan_refund(&again, eur(dec!(95.01))).unwrap_err().code(),
        "refund.exceeds_payment"
    );
    let all = plan_refund(&again, eur(dec!(95.00))).unwrap();
    assert!(all.allocations.is_empty());
    assert_eq!(all.unallocated(), eur(dec!(0.00)));
}

#[test]
fn a_bounced_cheque_is_reversed() {
    let invoices = three();
    let cheque = PaymentMethod::Cheque {
        number: "000123".into(),
        bank: Some("Bank".into()),
    };
    let mut p = payment("pay-1", dec!(100.00), day(2026, 1, 8), cheque);
    let balances = invoice_balances(&invoices, &[], &[], 14).unwrap();
    p.allocations = allocate(p.amount, &balances, None, noon(day(2026, 1, 8))).unwrap();
    let balances = invoice_balances(&invoices, std::slice::from_ref(&p), &[], 14).unwrap();
    assert_eq!(outstanding(&balances, "INV-A"), dec!(0));
    let at = noon(day(2026, 1, 12));
    let (reversed, owed) = plan_reversal(&p, "cheque bounced", "clerk", at).unwrap();
    // Nothing refunded: the reversal entry adds the whole 100.00 back.
    assert_eq!(owed, eur(dec!(100.00)));
    assert_eq!(
        reversed.state,
        PaymentState::Reversed {
            reason: "cheque bounced".into(),
            at,
            by: "clerk".into(),
        }
    );
    // A owes its 100.00 again: a reversed payment's allocations do not count.
    let balances = invoice_balances(&invoices, std::slice::from_ref(&reversed), &[], 14).unwrap();
    assert_eq!(outstanding(&balances, "INV-A"), dec!(100.00));
    assert_eq!(
        plan_reversal(&reversed, "again", "clerk", at),
        Err(FinanceError::PaymentReversed("pay-1".into()))
    );
    // After a 30.00 refund, reversing adds 100.00 - 30.00 = 70.00.
    let refunded = plan_refund(&p, eur(dec!(30.00))).unwrap();
    let (_, owed) = plan_reversal(&refunded, "charge-back", "clerk", at).unwrap();
    assert_eq!(owed, eur(dec!(70.00)));
}

proptest! {
    #[test]
    fn default_allocation_stays_within_the_payment_and_each_outstanding(
        owed in proptest::collection::vec(0i64..20_000, 0..6),
        paid_cents in 1i64..60_000,
    ) {
        let balances: Vec<InvoiceBalance> = owed
            .iter()
            .enumerate()
            .map(|(i, cents)| InvoiceBalance {
                invoice: SmolStr::new(format!("INV-{i}")),
                payer: acc(),
                issued_on: day(2026, 1, 1),
                // Due dates in reverse of the index: allocation must sort them.
                due_on: day(2026, 1, 28 - i8::try_from(i).unwrap()),
                total: Money::from_minor(*cents, Currency::EUR),
                charges: eur(Decimal::ZERO),
                paid: eur(Decimal::ZERO),
                credited: eur(Decimal::ZERO),
            })
            .collect();
        let amount = Money::from_minor(paid_cents, Currency::EUR);
        let allocations = allocate(amount, &balances, None, noon(day(2026, 2, 1))).unwrap();
        let mut p = payment("pay-1", amount.amount, day(2026, 2, 1), PaymentMethod::Advance);
        p.allocations = allocations.clone();
        prop_assert!(p.allocated().amount <= amount.amount);
        prop_assert!(p.unallocated().amount >= Decimal::ZERO);
        prop_assert_eq!(p.allocated().amount + p.unallocated().amount, amount.amount);
        let total_owed: i64 = owed.iter().sum();
        // Everything owed is paid, or the whole payment is used.
        let expected_credit = (paid_cents - total_owed).max(0);
        prop_assert_eq!(p.unallocated(), Money::from_minor(expected_credit, Currency::EUR));
        let mut seen = std::collections::BTreeSet::new();
        for a in &allocations {
            prop_assert!(seen.insert(a.invoice.clone()));
            prop_assert!(a.amount.amount > Decimal::ZERO);
            prop_assert!(a.amount.amount <= outstanding(&balances, &a.invoice));
        }
        // Oldest first: only the last allocation may be partial.
        for a in allocations.iter().rev().skip(1) {
            prop_assert_eq!(a.amount.amount, outstanding(&balances, &a.invoice));
        }
    }
}
