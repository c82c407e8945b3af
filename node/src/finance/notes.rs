//! Credit and debit notes from rerating: usage an invoice already billed (in an open or a closed
//! period) is never re-invoiced; the difference between the new and the old charges is booked
//! as a note in the current period, referencing the invoice, which stays as it was issued.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use smol_str::SmolStr;
use tollgate_actors::RerateReport;
use tollgate_domain::admin::AuditRecord;
use tollgate_domain::billing::NumberTemplate;
use tollgate_domain::billing::store::SubscriptionFilter;
use tollgate_domain::finance::credit_note::{NoteInput, build_note};
use tollgate_domain::finance::{
    ArEntry, ArKind, CreditNote, FinanceWrite, FinancialPeriod, NoteKind, PeriodState,
};
use tollgate_domain::ids::{AccountId, SubscriberId};

use super::payments::Actor;
use super::{Finance, FinanceFailure};

/// (service, old charge, new charge) of one rerated record.
type Difference = (SmolStr, Decimal, Decimal);

impl Finance {
    /// The payer billed for `subscriber`'s usage (through its subscription's account).
    fn payer_of_subscriber(
        &self,
        subscriber: &SubscriberId,
    ) -> Result<Option<AccountId>, FinanceFailure> {
        let filter = SubscriptionFilter {
            subscriber: Some(subscriber.clone()),
            ..SubscriptionFilter::default()
        };
        let subs = self.customers.search_subscriptions(&filter, None, 1)?;
        let Some(sub) = subs.into_iter().next() else {
            return Ok(None);
        };
        let forest = self.customers.forest()?;
        Ok(forest.payer_of(&sub.account).ok())
    }

    /// Books a note per invoice whose billed usage `reports` changed (once per job and invoice:
    /// asking again answers the notes written the first time). Blocking.
    pub fn notes_for_rerate(
        &self,
        job: &str,
        reports: &[RerateReport],
        by: &Actor,
    ) -> Result<Vec<CreditNote>, FinanceFailure> {
        let mut per_payer: BTreeMap<AccountId, Vec<(jiff::civil::Date, Difference)>> =
            BTreeMap::new();
        for report in reports {
            let subscriber = SubscriberId::new(&report.subscriber);
            let Some(payer) = self.payer_of_subscriber(&subscriber)? else {
                continue;
            };
            for line in &report.changed {
                per_payer.entry(payer.clone()).or_default().push((
                    self.date_of(line.start),
                    (
                        line.service.clone(),
                        line.old_charge.amount,
                        line.new_charge.amount,
                    ),
                ));
            }
        }
        let mut notes = Vec::new();
        for (payer, lines) in per_payer {
            let invoices = self.invoices_of(&payer)?;
            let mut per_invoice: BTreeMap<SmolStr, Vec<Difference>> = BTreeMap::new();
            for (day, difference) in lines {
                // Usage no invoice covers yet is billed with its new charge by the next run.
                if let Some(invoice) = invoices.iter().find(|i| i.period.contains(day)) {
                    per_invoice
                        .entry(invoice.number.clone())
                        .or_default()
                        .push(difference);
                }
            }
            for (number, differences) in per_invoice {
                let key = smol_str::format_smolstr!("rerate:{job}:{number}");
                if let Some(note) = self.note_for(&key, &number, &differences, job, by)? {
                    notes.push(note);
                }
            }
        }
        Ok(notes)
    }

    fn note_for(
        &self,
        key: &SmolStr,
        number: &str,
        differences: &[Difference],
        job: &str,
        by: &Actor,
    ) -> Result<Option<CreditNote>, FinanceFailure> {
        let _guard = self.locked();
        self.retrying(|| {
            if let Some(note) = self.store.note_by_key(key)? {
                return Ok(Some(note));
            }
            let Some(invoice) = self.runs.invoice(number)? else {
                return Ok(None);
            };
            let now = self.now();
            let today = self.date_of(now);
            let booked_in = FinancialPeriod::id_of(today);
            let current = self.period(&booked_in)?;
            if current.state == PeriodState::Closed {
                return Err(FinanceFailure::Refused {
                    code: "period.closed",
                    message: format!(
                        "the current period {booked_in} is closed: reopen it to book notes"
                    ),
                });
            }
            let r = self.receivables(&invoice.payer)?;
            let invoice_period = FinancialPeriod::id_of(invoice.period.start);
            let closed = self
                .store
                .period(&invoice_period)?
                .is_some_and(|p| p.is_closed_for_account(&invoice.payer));
            let reason = format!(
                "rerate job {job}: usage of invoice {number} rated again{}",
                if closed { " (period closed)" } else { "" }
            );
            // Numbered in its series only if there is something to book: a dry build first.
            let probe = build_note(&NoteInput {
                invoice: &invoice,
                key: key.clone(),
                number: SmolStr::default(),
                booked_in: booked_in.clone(),
                issued_on: today,
                issued_at: now,
                reason: reason.clone(),
                differences,
            })?;
            let Some(probe) = probe else {
                return Ok(None);
            };
            let mut text = r.setup.credit_note_number_template.clone();
            if probe.kind == NoteKind::Debit {
                text = text.replace("CN", "DN");
            }
            let template = NumberTemplate::parse(&text).map_err(|e| FinanceFailure::Refused {
                code: e.code(),
                message: e.to_string(),
            })?;
            let numbering = |e: tollgate_domain::billing::BillingError| FinanceFailure::Refused {
                code: e.code(),
                message: e.to_string(),
            };
            let series = template.series_key(today, "").map_err(numbering)?;
            let counter = format!("note:{series}");
            let seq = self.store.counter(&counter)?;
            let number = template.render(today, "", seq + 1).map_err(numbering)?;
            let note = CreditNote {
                number: number.into(),
                ..probe
            };
            let kind = match note.kind {
                NoteKind::Credit => ArKind::CreditNote,
                NoteKind::Debit => ArKind::DebitNote,
            };
            let entry = ArEntry {
                key: smol_str::format_smolstr!("note:{key}"),
                account: invoice.payer.clone(),
                kind,
                document: note.number.clone(),
                invoice: Some(invoice.number.clone()),
                amount: note.gross.money,
                on: today,
                at: now,
                description: reason.clone(),
            };
            let mut write = FinanceWrite {
                entries: vec![entry.clone()],
                notes: vec![note.clone()],
                counters: vec![(counter.as_str().into(), seq, seq + 1)],
                audit: vec![AuditRecord::new(
                    now,
                    &by.principal,
                    "credit_note.issue",
                    format!("credit_note/{}", note.number),
                    &by.request_id,
                    None,
                    serde_json::to_value(&note).ok(),
                )],
                ..FinanceWrite::default()
            };
            let mut entries = r.entries.clone();
            entries.push(entry);
            self.settle_into(&r, r.payments.clone(), &entries, today, &mut write)?;
            self.commit(write)?;
            let label = match note.kind {
                NoteKind::Credit => "credit",
                NoteKind::Debit => "debit",
            };
            self.metrics.notes.with_label_values(&[label]).inc();
            Ok(Some(note))
        })
    }
}
