//! Printable HTML of an invoice (and of a customer's document pack): one self-contained page,
//! every value escaped, amounts as stored (exact, in minor-unit precision).

use std::fmt::Write;

use tollgate_domain::billing::run::Invoice;
use tollgate_domain::billing::{Amount, FeeKind};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn money(a: &Amount) -> String {
    escape(&format!("{} {}", a.money.amount, a.money.currency.code()))
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#111}\
table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}\
td,th{border-bottom:1px solid #ccc;padding:.25em .5em;text-align:left}\
td.n,th.n{text-align:right}h1{margin-bottom:0}.sec{margin-left:calc(var(--d)*1.5em)}\
.invoice{page-break-after:always}";

/// One invoice as a complete HTML page.
pub fn page(invoice: &Invoice) -> String {
    pack(
        &format!("Invoice {}", invoice.number),
        std::slice::from_ref(invoice),
    )
}

/// Several invoices in one printable page (a customer's document pack), one per printed page.
pub fn pack(title: &str, invoices: &[Invoice]) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    );
    if invoices.is_empty() {
        html.push_str("<p>No invoices.</p>");
    }
    for invoice in invoices {
        body(&mut html, invoice);
    }
    html.push_str("</body></html>");
    html
}

fn body(html: &mut String, invoice: &Invoice) {
    let d = &invoice.draft;
    let _ = write!(
        html,
        "<div class=\"invoice\"><h1>Invoice {}</h1><p>Issued {} &middot; payer account {} \
         &middot; customer {} &middot; period {} to {} (exclusive) &middot; currency {}</p>",
        escape(&invoice.number),
        invoice.issued_on,
        escape(invoice.payer.as_str()),
        escape(invoice.customer.as_str()),
        invoice.period.start,
        invoice.period.end,
        escape(d.currency.code()),
    );
    for section in &d.sections {
        let _ = write!(
            html,
            "<div class=\"sec\" style=\"--d:{}\"><h2>{} &mdash; account {}</h2><table>\
             <tr><th>Item</th><th>Detail</th><th class=\"n\">Amount</th></tr>",
            section.depth,
            escape(&section.customer_name),
            escape(section.account.as_str()),
        );
        for u in &section.usage {
            let _ = write!(
                html,
                "<tr><td>Usage: {}</td><td>{} events, {} units</td><td class=\"n\">{}</td></tr>",
                escape(&u.service),
                u.events,
                u.quantity,
                money(&u.amount)
            );
        }
        for f in &section.fees {
            let period = f
                .service_period
                .map(|p| format!("{} to {}", p.start, p.end))
                .unwrap_or_default();
            let kind = match f.kind {
                FeeKind::Recurring => "",
                FeeKind::RecurringAdjustment => " (adjustment)",
                FeeKind::OneOff => " (one-off)",
            };
            let _ = write!(
                html,
                "<tr><td>{}{kind}</td><td>subscription {} &middot; {} &times; {} {}</td>\
                 <td class=\"n\">{}</td></tr>",
                escape(&f.name),
                escape(f.subscription.as_str()),
                f.quantity,
                escape(&f.unit_price.to_string()),
                escape(&period),
                money(&f.amount)
            );
        }
        for disc in &section.discounts {
            let _ = write!(
                html,
                "<tr><td>Discount: {}</td><td></td><td class=\"n\">{}</td></tr>",
                escape(&disc.name),
                money(&disc.amount)
            );
        }
        let _ = write!(
            html,
            "<tr><th>Section total</th><th></th><th class=\"n\">{}</th></tr></table></div>",
            money(&section.total)
        );
    }
    if !d.discounts.is_empty() {
        html.push_str("<h2>Invoice discounts</h2><table>");
        for disc in &d.discounts {
            let _ = write!(
                html,
                "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
                escape(&disc.name),
                money(&disc.amount)
            );
        }
        html.push_str("</table>");
    }
    html.push_str(
        "<h2>Taxes</h2><table><tr><th>Tax</th><th>Category</th><th class=\"n\">Rate</th>\
         <th class=\"n\">Base</th><th class=\"n\">Tax</th></tr>",
    );
    for t in &d.tax_lines {
        let _ = write!(
            html,
            "<tr><td>{}{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            escape(&t.code),
            if t.inclusive { " (included)" } else { "" },
            escape(&t.category),
            t.rate,
            money(&t.base),
            money(&t.tax)
        );
    }
    let totals = &d.totals;
    let _ = write!(
        html,
        "</table><table><tr><th>Net</th><td class=\"n\">{}</td></tr><tr><th>Tax</th>\
         <td class=\"n\">{}</td></tr><tr><th>Total due</th><td class=\"n\"><b>{}</b></td></tr>\
         </table></div>",
        money(&totals.net),
        money(&totals.tax),
        money(&totals.gross)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<b>\"A&B\"</b> it's"),
            "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt; it&#39;s"
        );
    }
}
