//! The partner-statement API against a real node process whose store is seeded with a partner,
//! its agreement, a numbered March statement and the per-record shares behind it (the
//! settlement flow that produces them end to end is tested elsewhere): stages and their
//! conflicts, the text document, reconciliation from CSV and JSON lines with bad lines, and a
//! dispute resolved by a numbered credit note, each step audited.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use jiff::civil::date;
use serde_json::{Value, json};
use support::{ADMIN_TOKEN, NodeFiles, call_raw, get, post};
use tollgate_adapters::embedded::{EmbeddedStore, StoreConfig};
use tollgate_adapters::partners::EmbeddedPartnerStore;
use tollgate_domain::billing::{NumberTemplate, Period};
use tollgate_domain::ids::{CdrId, PartnerId};
use tollgate_domain::money::{Currency, Money};
use tollgate_domain::partner::store::StoredShare;
use tollgate_domain::partner::{
    Accumulated, Agreement, AgreementVersion, Partner, PartnerRecord, PartnerStore, PartnerWrite,
    Position, RatedRecord, ShareRule, ShareTarget, ShareValue, build_statement,
};

const NUMBER: &str = "SB-2026-000001";

/// Partner `acme`, 30 % of product music-plus; March: 400.00 + 500.00 + 334.56 of revenue,
/// 370.368 of share, 370.37 on the statement.
fn seed(files: &NodeFiles) {
    std::fs::create_dir_all(files.dir.path().join("data")).unwrap();
    let path = files.dir.path().join("data/ledger");
    let engine = Arc::new(EmbeddedStore::open(StoreConfig::new(path)).unwrap());
    let store = EmbeddedPartnerStore::new(engine);
    let eur = Currency::from_code("EUR").unwrap();
    let agreement = Agreement {
        id: "agr-acme".into(),
        partner: PartnerId::new("acme"),
        from: date(2026, 1, 1),
        to: None,
        currency: eur,
        versions: vec![AgreementVersion {
            valid_from: date(2026, 1, 1),
            shares: vec![ShareRule {
                target: ShareTarget::Product("music-plus".into()),
                value: ShareValue::Percent(30.into()),
            }],
            min_guarantee: None,
            cap: None,
            note: None,
        }],
    };
    let period = Period::new(date(2026, 3, 1), date(2026, 4, 1)).unwrap();
    let mut position = Position::new(&agreement, period);
    let mut items = Vec::new();
    for (id, revenue) in [("c1", "400.00"), ("c2", "500.00"), ("c3", "334.56")] {
        let record = RatedRecord {
            cdr_id: CdrId::new(id),
            product: "music-plus".into(),
            service: "data".into(),
            start: date(2026, 3, 3),
            units: 60,
            revenue: Money::new(revenue.parse().unwrap(), eur),
            reversal: false,
        };
        if let Accumulated::Counted(share) = position.accumulate(&agreement, &record).unwrap() {
            items.push(StoredShare {
                partner: PartnerId::new("acme"),
                period_start: period.start,
                share,
            });
        }
    }
    let mut statement = build_statement(&position, &agreement, None).unwrap();
    let template = NumberTemplate::parse("SB-{yyyy}-{seq:06}").unwrap();
    statement
        .assign_number(&template, date(2026, 4, 2), "", 1)
        .unwrap();
    let partner: Partner = serde_json::from_value(json!({
        "id": "acme",
        "legal_name": "Acme Content GmbH",
        "tax_id": "DE123456789",
        "bank_reference": "DE89 3704 0044 0532 0130 00",
    }))
    .unwrap();
    store
        .commit(PartnerWrite {
            partners: vec![(
                PartnerRecord {
                    partner,
                    version: 1,
                },
                0,
            )],
            agreements: vec![(agreement, 0)],
            statements: vec![statement],
            items,
            counters: vec![("statement:SB-2026".into(), 0, 1)],
            ..PartnerWrite::default()
        })
        .unwrap();
}

fn statement_url(node: &NodeFiles, rest: &str) -> String {
    node.url(&format!("/v1/partner-statements/{NUMBER}{rest}"))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn upload(node: &NodeFiles, query: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let url = statement_url(node, &format!("/reconciliations{query}"));
    call_raw("POST", &url, Some(ADMIN_TOKEN), content_type, body)
}

#[test]
fn statements_are_reviewed_reconciled_disputed_approved_and_released() {
    let files = NodeFiles::new("");
    seed(&files);
    let _node = files.start();
    let node = &files;

    // Reading.
    let (status, list) = get(&node.url("/v1/partners/acme/statements?period=2026-03"));
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"][0]["number"], NUMBER);
    assert_eq!(list["items"][0]["stage"], "issued");
    assert_eq!(list["items"][0]["statement"]["total"]["amount"], "370.37");
    let (_, other) = get(&node.url("/v1/partners/acme/statements?period=2026-04"));
    assert_eq!(other["items"], json!([]));
    let (status, body) = get(&node.url("/v1/partners/acme/statements?period=2026-3"));
    assert_eq!((status, code(&body)), (422, "period.invalid"));
    let (status, body) = get(&node.url("/v1/partners/ghost/statements"));
    assert_eq!((status, code(&body)), (404, "partner.not_found"));
    let (status, body) = get(&node.url("/v1/partner-statements/SB-404"));
    assert_eq!((status, code(&body)), (404, "partner_statement.not_found"));

    let response = ureq::get(&statement_url(node, "/document"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .unwrap();
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.into_string().unwrap();
    assert!(text.starts_with(&format!("SELF-BILLING STATEMENT {NUMBER}\nStage: issued\n")));
    assert!(text.contains("Acme Content GmbH (acme)"), "{text}");
    assert!(text.contains("DE89 3704 0044 0532 0130 00"), "{text}");
    let line: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("product:music-plus"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        line,
        ["product:music-plus", "3", "180", "1234.56", "370.37"]
    );

    // Release before approval: a conflict with the stage.
    let (status, body) = post(
        &statement_url(node, "/release"),
        json!({"reference": "P-1"}),
    );
    assert_eq!((status, code(&body)), (409, "statement.stage"));

    // Reconciliation: their product total 380.00 against our 370.37.
    let (status, report) = upload(node, "", "text/csv", b"product,amount\nmusic-plus,380.00\n");
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["id"], format!("rec-{NUMBER}-1"));
    assert_eq!(report["lines"][0]["target"], "product:music-plus");
    assert_eq!(report["lines"][0]["difference"], "9.63");
    assert_eq!(report["total"]["difference"], "9.63");
    assert_eq!(report["counts"]["only_ours"], 3);
    // Record level, with a tolerance and a bad line that is reported, not fatal.
    let jsonl = concat!(
        "{\"record_id\": \"c1\", \"amount\": \"120.00\"}\n",
        "{\"record_id\": \"c2\", \"amount\": \"151.5\"}\n",
        "{\"record_id\": \"c9\", \"amount\": \"4\"}\n",
        "not json\n",
    );
    let (status, report) = upload(
        node,
        "?tolerance=0.005",
        "application/x-ndjson",
        jsonl.as_bytes(),
    );
    assert_eq!(status, 201, "{report}");
    assert_eq!(
        report["counts"],
        json!({"matched": 1, "differing": 1, "only_ours": 1, "only_theirs": 1, "problems": 1})
    );
    assert_eq!(report["differing"][0]["record"], "c2");
    assert_eq!(report["differing"][0]["difference"], "1.50");
    assert_eq!(report["problems"][0]["line"], 4);
    assert_eq!(report["problems"][0]["code"], "reconcile.bad_line");
    assert_eq!(report["total"]["difference"], "-94.87");
    let (status, body) = upload(node, "", "text/csv", b"id,value\n1,2\n");
    assert_eq!((status, code(&body)), (422, "reconcile.format"));
    let (status, body) = upload(node, "", "application/jsonl", b"nope\n");
    assert_eq!((status, code(&body)), (422, "reconcile.format"));
    let (status, body) = upload(node, "", "application/json", b"{}");
    assert_eq!(
        (status, code(&body)),
        (415, "request.unsupported_media_type")
    );
    let (status, body) = upload(node, "?tolerance=-1", "text/csv", b"product,amount\n");
    assert_eq!((status, code(&body)), (422, "reconcile.bad_tolerance"));
    let (status, page) = get(&statement_url(node, "/reconciliations?limit=1"));
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"][0]["id"], format!("rec-{NUMBER}-1"));
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, page) = get(&statement_url(
        node,
        &format!("/reconciliations?cursor={cursor}"),
    ));
    assert_eq!(page["items"][0]["id"], format!("rec-{NUMBER}-2"));
    assert_eq!(page["next_cursor"], Value::Null);

    // A dispute, commented, resolved by a credit note; nothing after that.
    let (status, body) = post(
        &statement_url(node, "/disputes"),
        json!({"claimed": {"amount": "9.63", "currency": "EUR"}}),
    );
    assert_eq!((status, code(&body)), (422, "request.invalid_field"));
    let (status, body) = post(
        &statement_url(node, "/disputes"),
        json!({"claimed": {"amount": "9.63", "currency": "EUR"}, "reason": " "}),
    );
    assert_eq!((status, code(&body)), (422, "dispute.reason_required"));
    let (status, dispute) = post(
        &statement_url(node, "/disputes"),
        json!({
            "lines": ["product:music-plus"],
            "claimed": {"amount": "9.63", "currency": "EUR"},
            "reason": "our count says 380.00",
        }),
    );
    assert_eq!(status, 201, "{dispute}");
    assert_eq!(dispute["id"], "dsp-1");
    assert_eq!(dispute["state"], "open");
    let (status, dispute) = post(
        &node.url("/v1/partner-disputes/dsp-1/comment"),
        json!({"note": "checking the March records"}),
    );
    assert_eq!(status, 200, "{dispute}");
    let (status, dispute) = post(
        &node.url("/v1/partner-disputes/dsp-1/resolve"),
        json!({"credit_note": {"amount": "9.63"}}),
    );
    assert_eq!(status, 200, "{dispute}");
    assert_eq!(dispute["state"], "resolved");
    let number = dispute["dispute"]["state"]["resolved"]["credit_note"]["number"]
        .as_str()
        .unwrap();
    assert!(
        number.starts_with("PCN-") && number.ends_with("-000001"),
        "{number}"
    );
    let (status, body) = post(
        &node.url("/v1/partner-disputes/dsp-1/resolve"),
        json!({"reject": {"reason": "late"}}),
    );
    assert_eq!((status, code(&body)), (409, "dispute.illegal_transition"));
    let (status, body) = post(
        &node.url("/v1/partner-disputes/dsp-1/resolve"),
        json!({"reject": {}}),
    );
    assert_eq!((status, code(&body)), (422, "request.invalid_field"));
    let (status, body) = get(&node.url("/v1/partner-disputes/dsp-9"));
    assert_eq!((status, code(&body)), (404, "partner_dispute.not_found"));
    let (_, disputes) = get(&node.url("/v1/partners/acme/disputes?state=resolved"));
    assert_eq!(disputes["items"][0]["id"], "dsp-1");
    let (_, none) = get(&node.url("/v1/partners/acme/disputes?state=open"));
    assert_eq!(none["items"], json!([]));

    // Approval, then release with the payment reference.
    let (status, view) = post(&statement_url(node, "/approve"), json!({"note": "checked"}));
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["stage"], "approved");
    assert_eq!(view["statement"]["approved"]["note"], "checked");
    assert_eq!(
        view["reconciliations"],
        json!([format!("rec-{NUMBER}-1"), format!("rec-{NUMBER}-2")])
    );
    assert_eq!(view["disputes"], json!(["dsp-1"]));
    let (status, body) = post(&statement_url(node, "/approve"), json!({}));
    assert_eq!((status, code(&body)), (409, "statement.stage"));
    let (status, body) = post(&statement_url(node, "/release"), json!({"reference": " "}));
    assert_eq!((status, code(&body)), (422, "statement.reference_required"));
    let (status, view) = post(
        &statement_url(node, "/release"),
        json!({"reference": "PAY-2026-17"}),
    );
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["stage"], "released");
    assert_eq!(view["statement"]["released"]["note"], "PAY-2026-17");

    // Every step is in the audit trail with the stage (or state) before and after.
    let (_, audit) = get(&node.url("/v1/audit?operation=partner_statement."));
    let steps: Vec<(&str, &Value, &Value)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["operation"].as_str().unwrap(),
                &r["before"]["stage"],
                &r["after"]["stage"],
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("partner_statement.reconcile", &Value::Null, &Value::Null),
            ("partner_statement.reconcile", &Value::Null, &Value::Null),
            (
                "partner_statement.approve",
                &json!("issued"),
                &json!("approved")
            ),
            (
                "partner_statement.release",
                &json!("approved"),
                &json!("released")
            ),
        ]
    );
    let (_, audit) = get(&node.url("/v1/audit?operation=partner_dispute."));
    let steps: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["operation"].as_str().unwrap(),
                r["target"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("partner_dispute.open", "partner_dispute/dsp-1"),
            ("partner_dispute.comment", "partner_dispute/dsp-1"),
            ("partner_dispute.credit_note", "partner_dispute/dsp-1"),
        ]
    );
}
