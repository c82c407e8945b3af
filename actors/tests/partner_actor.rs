//! The partner actor drains its inbox into positions exactly once: records counted once under
//! the version in force on their day, redelivered rows change nothing, rows it cannot share
//! yet stay in the inbox (nothing lost) until an agreement covers them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use actix::prelude::*;
use jiff::civil::date;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use smol_str::SmolStr;
use tollgate_actors::partner::PartnerMetrics;
use tollgate_actors::{PartnerRouter, PartnerShared, PartnerWake};
use tollgate_domain::ids::{CdrId, PartnerId, SubscriberId};
use tollgate_domain::ledger::MemoryLedgerStore;
use tollgate_domain::ledger::{Account, AccountWrite, Fence, LedgerStore, Mode, PartnerInboxRow};
use tollgate_domain::money::{Currency, Money};
use tollgate_domain::partner::{
    Agreement, AgreementVersion, InboxRecord, MemoryPartnerStore, PartnerStore, PartnerWrite,
    ShareRule, ShareTarget, ShareValue,
};

fn agreement(to: Option<jiff::civil::Date>) -> Agreement {
    let version = |from, percent: Decimal| AgreementVersion {
        valid_from: from,
        shares: vec![ShareRule {
            target: ShareTarget::Product("music-plus".into()),
            value: ShareValue::Percent(percent),
        }],
        min_guarantee: None,
        cap: None,
        note: None,
    };
    Agreement {
        id: "agr-acme".into(),
        partner: PartnerId::new("acme"),
        from: date(2026, 3, 1),
        to,
        currency: Currency::EUR,
        versions: vec![
            version(date(2026, 3, 1), dec!(30)),
            version(date(2026, 3, 16), dec!(35)),
        ],
    }
}

fn record(id: &str, product: &str, start: &str, revenue: Decimal, currency: Currency) -> Vec<u8> {
    serde_json::to_vec(&InboxRecord {
        cdr_id: CdrId::new(id),
        product: product.into(),
        service: "content".into(),
        start: start.parse().unwrap(),
        units: 1,
        revenue: Money::new(revenue, currency),
        catalogue_share: None,
        reversal: false,
    })
    .unwrap()
}

/// Puts rows into partners' inboxes the way a subscriber actor does: with a ledger write.
fn charge(ledger: &MemoryLedgerStore, rows: Vec<(&str, &str, Vec<u8>)>) {
    let account = Account::new(SubscriberId::new("m0"), Currency::EUR, Mode::Postpaid);
    ledger
        .commit(vec![AccountWrite {
            fence: Fence { shard: 0, epoch: 1 },
            account,
            entries: Vec::new(),
            first_seq: 0,
            answers: Vec::new(),
            at: "2026-04-01T00:00:00Z".parse().unwrap(),
            usage: Vec::new(),
            audit: Vec::new(),
            partner_inbox: rows
                .into_iter()
                .map(|(partner, key, record)| PartnerInboxRow {
                    partner: PartnerId::new(partner),
                    key: SmolStr::new(key),
                    record,
                })
                .collect(),
        }])
        .unwrap();
}

fn inbox(ledger: &MemoryLedgerStore, partner: &str) -> Vec<String> {
    ledger
        .partner_inbox(&PartnerId::new(partner), None, 100)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k.to_string())
        .collect()
}

#[actix_rt::test]
async fn the_inbox_is_counted_once_and_what_cannot_be_shared_waits() {
    let ledger = Arc::new(MemoryLedgerStore::new());
    let store = Arc::new(MemoryPartnerStore::new());
    let shared = Arc::new(PartnerShared {
        store: store.clone(),
        ledger: ledger.clone(),
        timezone: TimeZone::UTC,
        metrics: PartnerMetrics::new(&prometheus::Registry::new()).unwrap(),
        waiting_drain_interval: std::time::Duration::from_millis(300),
    });
    let router = PartnerRouter::new(shared, Arbiter::new().handle());
    let acme = PartnerId::new("acme");
    let eur = Currency::EUR;
    let usd = Currency::from_code("USD").unwrap();

    // Before any agreement: everything waits.
    charge(
        &ledger,
        vec![
            (
                "acme",
                "c1",
                record("c1", "music-plus", "2026-03-02T10:00:00Z", dec!(10.00), eur),
            ),
            (
                "acme",
                "c2",
                record("c2", "music-plus", "2026-03-20T10:00:00Z", dec!(10.00), eur),
            ),
            (
                "acme",
                "c3",
                record("c3", "other", "2026-03-03T10:00:00Z", dec!(5.00), eur),
            ),
            (
                "acme",
                "c4",
                record("c4", "music-plus", "2026-03-04T10:00:00Z", dec!(1.00), usd),
            ),
            ("acme", "c5", b"not json".to_vec()),
            (
                "acme",
                "c6",
                record("c6", "music-plus", "2026-04-02T10:00:00Z", dec!(10.00), eur),
            ),
            (
                "beta",
                "c1",
                record("c1", "music-plus", "2026-03-02T10:00:00Z", dec!(10.00), eur),
            ),
        ],
    );
    let report = router.drain(&acme).await.unwrap();
    assert_eq!(
        (report.counted, report.unassigned, report.unreadable),
        (0, 5, 1)
    );
    assert_eq!(inbox(&ledger, "acme").len(), 6, "nothing is lost");

    // The agreement (March only) comes: c1 at 30 %, c2 at 35 % (second version), c3 not
    // shared; c4 (USD) refused, c5 unreadable and c6 (April) wait.
    store
        .commit(PartnerWrite {
            agreements: vec![(agreement(Some(date(2026, 4, 1))), 0)],
            ..PartnerWrite::default()
        })
        .unwrap();
    let report = router.agreements_changed(&acme).await.unwrap();
    assert_eq!(
        (
            report.counted,
            report.not_shared,
            report.refused,
            report.unreadable,
            report.unassigned
        ),
        (2, 1, 1, 1, 1),
        "{report:?}"
    );
    assert_eq!(inbox(&ledger, "acme"), ["c4", "c5", "c6"]);
    assert_eq!(
        inbox(&ledger, "beta"),
        ["c1"],
        "another partner's inbox is untouched"
    );
    let position = store.position(&acme, date(2026, 3, 1)).unwrap().unwrap();
    let line = position
        .lines
        .get(&ShareTarget::Product("music-plus".into()))
        .unwrap();
    assert_eq!(
        (line.records, line.base, line.share),
        (2, dec!(20.00), dec!(6.5000))
    );
    let items = store
        .item_shares(&acme, date(2026, 3, 1), None, 10)
        .unwrap();
    let shares: Vec<(String, Decimal)> = items
        .iter()
        .map(|i| (i.item.to_string(), i.share.amount))
        .collect();
    assert_eq!(
        shares,
        [("c1".into(), dec!(3.000)), ("c2".into(), dec!(3.5000))]
    );

    // A crash after the position was written but before the rows were removed: the rows come
    // again and change nothing.
    charge(
        &ledger,
        vec![
            (
                "acme",
                "c1",
                record("c1", "music-plus", "2026-03-02T10:00:00Z", dec!(10.00), eur),
            ),
            (
                "acme",
                "c2",
                record("c2", "music-plus", "2026-03-20T10:00:00Z", dec!(10.00), eur),
            ),
        ],
    );
    let report = router.drain(&acme).await.unwrap();
    assert_eq!((report.counted, report.duplicate), (0, 2), "{report:?}");
    assert_eq!(
        store.position(&acme, date(2026, 3, 1)).unwrap().unwrap(),
        position
    );
    assert_eq!(
        store
            .item_shares(&acme, date(2026, 3, 1), None, 10)
            .unwrap()
            .len(),
        2
    );

    // A wake is enough for new rows (what subscriber actors do after their write); while rows
    // wait for an agreement, wakes drain at most once per interval (not for every batch).
    charge(
        &ledger,
        vec![(
            "acme",
            "c7",
            record(
                "c7",
                "music-plus",
                "2026-03-07T10:00:00Z",
                dec!(100.00),
                eur,
            ),
        )],
    );
    router.wake(std::slice::from_ref(&acme));
    router.wake(std::slice::from_ref(&acme));
    actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        inbox(&ledger, "acme").contains(&"c7".to_string()),
        "drain delayed"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while inbox(&ledger, "acme").contains(&"c7".to_string()) {
        assert!(
            std::time::Instant::now() < deadline,
            "woken actor drained c7"
        );
        actix_rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let position = store.position(&acme, date(2026, 3, 1)).unwrap().unwrap();
    assert_eq!((position.counted, position.counted_records.len()), (3, 0));

    // March is settled (its statement issued): a March record arriving now is settled with
    // April. The agreement ends with March, so it waits; with an April agreement it is counted
    // into April's position under the terms of its own day.
    let mut statement = tollgate_domain::partner::build_statement(
        &position,
        &agreement(Some(date(2026, 4, 1))),
        None,
    )
    .unwrap();
    statement.number = Some("SB-2026-000001".into());
    store
        .commit(PartnerWrite {
            statements: vec![statement],
            ..PartnerWrite::default()
        })
        .unwrap();
    charge(
        &ledger,
        vec![(
            "acme",
            "c9",
            record("c9", "music-plus", "2026-03-30T10:00:00Z", dec!(10.00), eur),
        )],
    );
    let report = router.drain(&acme).await.unwrap();
    // c4, c6 and c9 wait: c4 and c9 are late (March settled) and April has no agreement yet.
    assert_eq!((report.counted, report.unassigned), (0, 3), "{report:?}");
    let mut april = agreement(None);
    april.id = "agr-acme-april".into();
    april.from = date(2026, 4, 1);
    april.versions = vec![april.versions[0].clone()];
    april.versions[0].valid_from = date(2026, 4, 1);
    april.versions[0].shares[0].value = ShareValue::Percent(dec!(50));
    store
        .commit(PartnerWrite {
            agreements: vec![(april, 0)],
            ..PartnerWrite::default()
        })
        .unwrap();
    // c6 (April 2nd) is counted under the April agreement; c9 is shared under agr-acme (its
    // day) but April is settled under agr-acme-april: refused, it waits (as c4, in USD).
    let report = router.agreements_changed(&acme).await.unwrap();
    assert_eq!(
        (report.counted, report.late, report.refused),
        (1, 0, 2),
        "{report:?}"
    );
    assert_eq!(inbox(&ledger, "acme"), ["c4", "c5", "c9"]);

    // With one open-ended agreement, a late March record is counted into April, at the 35 %
    // of its own day, and not twice when its row comes again.
    let gamma = PartnerId::new("gamma");
    let mut g = agreement(None);
    g.id = "agr-gamma".into();
    g.partner = gamma.clone();
    store
        .commit(PartnerWrite {
            agreements: vec![(g.clone(), 0)],
            ..PartnerWrite::default()
        })
        .unwrap();
    let on_time = record("g1", "music-plus", "2026-03-20T10:00:00Z", dec!(10.00), eur);
    charge(&ledger, vec![("gamma", "g1", on_time)]);
    router.drain(&gamma).await.unwrap();
    let march = store.position(&gamma, date(2026, 3, 1)).unwrap().unwrap();
    let mut statement = tollgate_domain::partner::build_statement(&march, &g, None).unwrap();
    statement.number = Some("SB-2026-000002".into());
    store
        .commit(PartnerWrite {
            statements: vec![statement],
            ..PartnerWrite::default()
        })
        .unwrap();
    let late = record("g2", "music-plus", "2026-03-31T10:00:00Z", dec!(20.00), eur);
    charge(&ledger, vec![("gamma", "g2", late.clone())]);
    let report = router.drain(&gamma).await.unwrap();
    assert_eq!((report.counted, report.late), (1, 1), "{report:?}");
    assert_eq!(
        store.position(&gamma, date(2026, 3, 1)).unwrap().unwrap(),
        march,
        "the settled month is left as it was settled"
    );
    let april_position = store.position(&gamma, date(2026, 4, 1)).unwrap().unwrap();
    let line = april_position.lines[&ShareTarget::Product("music-plus".into())];
    assert_eq!((line.records, line.share), (1, dec!(7.0000)));
    charge(&ledger, vec![("gamma", "g2", late)]);
    let report = router.drain(&gamma).await.unwrap();
    assert_eq!((report.counted, report.duplicate), (0, 1), "{report:?}");

    // Records of a partner the store does not know wait without waking anything.
    charge(
        &ledger,
        vec![(
            "ghost",
            "g1",
            record("g1", "music-plus", "2026-03-07T10:00:00Z", dec!(1.00), eur),
        )],
    );
    router.wake(&[PartnerId::new("ghost")]);
    actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(inbox(&ledger, "ghost"), ["g1"]);
}
