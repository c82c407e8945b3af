//! The subscriber actor with an in-memory store: concurrent sessions never overspend, replays
//! answer the same, CDR batches are charged once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix::Arbiter;
use rust_decimal_macros::dec;
use smol_str::SmolStr;
use tollgate_actors::{
    ActorMetrics, CdrOutcome, Charge, GetBalance, Profiles, RateCdrs, Router, SetBarring, Settings,
    Shared, TopUp,
};
use tollgate_cluster::ShardMap;
use tollgate_domain::catalogue::{Catalogue, Timeline};
use tollgate_domain::cdr::{Cdr, Direction};
use tollgate_domain::ids::{CdrId, SubscriberId};
use tollgate_domain::ledger::{LedgerStore, MemoryLedgerStore, Mode, SessionRequest, UsageSpec};
use tollgate_domain::money::{Currency, Money};
use tollgate_domain::subscriber::SubscriberProfile;

const CATALOGUE: &str = r#"
[catalogue]
name = "actor"
currency = "EUR"
[[services]]
id = "voice"
unit = "second"
[[plans]]
id = "p"
  [[plans.rules]]
  id = "voice"
  service = "voice"
  increments = "60/60"
  price = { rate = "0.60" }
[[products]]
id = "prod"
plans = ["p"]
"#;

struct Fixed(HashMap<SubscriberId, SubscriberProfile>);

impl Profiles for Fixed {
    fn get(&self, id: &SubscriberId) -> Option<SubscriberProfile> {
        self.0.get(id).cloned()
    }
}

fn router(store: Arc<dyn LedgerStore>) -> Router {
    router_with(store, Settings::default())
}

fn catalogue(rate: &str) -> Arc<Catalogue> {
    let text = CATALOGUE.replace("0.60", rate);
    Arc::new(Catalogue::from_toml(&text, "t.toml", &mut |_| Err(String::new())).unwrap())
}

fn router_with(store: Arc<dyn LedgerStore>, settings: Settings) -> Router {
    router_on(store, settings, Timeline::single(catalogue("0.60")))
}

fn router_on(store: Arc<dyn LedgerStore>, settings: Settings, timeline: Timeline) -> Router {
    let mut profiles = HashMap::new();
    for (id, mode) in [("pre", Mode::Prepaid), ("post", Mode::Postpaid)] {
        profiles.insert(
            SubscriberId::new(id),
            SubscriberProfile {
                id: SubscriberId::new(id),
                products: vec![SmolStr::new("prod")],
                currency: Some(Currency::EUR),
                attributes: Default::default(),
                mode,
            },
        );
    }
    let shared = Arc::new(Shared {
        catalogue: RwLock::new(Arc::new(timeline)),
        profiles: Arc::new(Fixed(profiles)),
        store,
        settings,
        metrics: ActorMetrics::new(&prometheus::Registry::new()).unwrap(),
        clock: Arc::new(|| "2026-03-02T10:00:00Z".parse().unwrap()),
        partners: std::sync::OnceLock::new(),
    });
    let arbiters = vec![Arbiter::new().handle(), Arbiter::new().handle()];
    Router::new(shared, ShardMap::single_node(16, 0), 0, arbiters)
}

fn usage() -> UsageSpec {
    UsageSpec {
        service: "voice".into(),
        direction: Direction::Outbound,
        caller: None,
        callee: None,
        trunk: None,
        attributes: Default::default(),
        start: None,
    }
}

#[actix_rt::test]
async fn a_hundred_concurrent_sessions_on_10_00_get_exactly_16_grants() {
    let store = Arc::new(MemoryLedgerStore::new());
    let router = Arc::new(router(store.clone()));
    let pre = SubscriberId::new("pre");
    let top = router
        .send(
            &pre,
            TopUp {
                audit: None,
                id: "t1".into(),
                amount: Money::new(dec!(10.00), Currency::EUR),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(top.unwrap().balance.amount, dec!(10.00));
    let sends = (0..100).map(|i| {
        let router = router.clone();
        let pre = pre.clone();
        async move {
            let request = SessionRequest::Initial {
                session: format!("s{i}").into(),
                request: "1".into(),
                usage: usage(),
                requested_units: 60,
            };
            router.send(&pre, Charge(request)).await.unwrap().unwrap()
        }
    });
    let answers = futures_util::future::join_all(sends).await;
    let granted = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(granted, 16);
    for refused in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_eq!(refused.code(), "balance.insufficient");
    }
    let balance = router.send(&pre, GetBalance).await.unwrap().unwrap();
    assert_eq!(
        (
            balance.balance.amount,
            balance.reserved.amount,
            balance.available.amount
        ),
        (dec!(10.00), dec!(9.60), dec!(0.40))
    );
    // The durable ledger agrees with the derived balances.
    let account = store.load_account(&pre).unwrap().unwrap();
    account.check(&store.entries(&pre).unwrap()).unwrap();
}

#[actix_rt::test]
async fn replayed_requests_and_top_ups_answer_the_same_and_apply_once() {
    let store = Arc::new(MemoryLedgerStore::new());
    let router = router(store.clone());
    let pre = SubscriberId::new("pre");
    let top = |id: &str| TopUp {
        audit: None,
        id: id.into(),
        amount: Money::new(dec!(5.00), Currency::EUR),
    };
    router
        .send(&pre, top("t1"))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let again = router
        .send(&pre, top("t1"))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        again.balance.amount,
        dec!(5.00),
        "a replayed top-up is applied once"
    );
    let start = SessionRequest::Initial {
        session: "call".into(),
        request: "r1".into(),
        usage: usage(),
        requested_units: 120,
    };
    let first = router
        .send(&pre, Charge(start.clone()))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let replay = router
        .send(&pre, Charge(start))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first, replay);
    let end = SessionRequest::Terminate {
        session: "call".into(),
        request: "r2".into(),
        used_units: 61,
    };
    let first = router
        .send(&pre, Charge(end.clone()))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let replay = router
        .send(&pre, Charge(end))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first, replay);
    assert_eq!(first.charged.amount, dec!(1.20));
    let unknown = SessionRequest::Update {
        session: "nope".into(),
        request: "x".into(),
        used_units: 1,
        requested_units: 1,
    };
    let refused = router
        .send(&pre, Charge(unknown))
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code(), "session.unknown");
    let balance = router.send(&pre, GetBalance).await.unwrap().unwrap();
    assert_eq!(balance.balance.amount, dec!(3.80));
}

#[actix_rt::test]
async fn cdr_batches_are_charged_once_and_duplicates_repeat_the_charge() {
    let store = Arc::new(MemoryLedgerStore::new());
    let router = router(store.clone());
    let post = SubscriberId::new("post");
    let cdr = |id: &str, units: u64| Cdr {
        id: CdrId::new(id),
        subscriber: post.clone(),
        service: "voice".into(),
        direction: Direction::Outbound,
        caller: None,
        callee: None,
        start: "2026-03-02T09:00:00Z".parse().unwrap(),
        units: Some(units),
        trunk: None,
        legs: Vec::new(),
        attributes: Default::default(),
    };
    let batch = vec![cdr("a", 30), cdr("b", 90), cdr("a", 30)];
    let outcomes = router
        .send(&post, RateCdrs(batch.clone()))
        .await
        .unwrap()
        .unwrap();
    let kinds: Vec<&str> = outcomes
        .iter()
        .map(|o| match o {
            CdrOutcome::Rated { .. } => "rated",
            CdrOutcome::Duplicate { .. } => "duplicate",
            CdrOutcome::Suspended { .. } => "suspended",
            CdrOutcome::Filtered { .. } => "filtered",
        })
        .collect();
    assert_eq!(kinds, vec!["rated", "rated", "duplicate"]);
    assert_eq!(store.commits(), 1, "one durable write for the batch");
    let again = router.send(&post, RateCdrs(batch)).await.unwrap().unwrap();
    assert!(
        again
            .iter()
            .all(|o| matches!(o, CdrOutcome::Duplicate { .. }))
    );
    match &again[1] {
        CdrOutcome::Duplicate { charge, .. } => assert_eq!(charge.amount, dec!(1.20)),
        other => panic!("{other:?}"),
    }
    let balance = router.send(&post, GetBalance).await.unwrap().unwrap();
    assert_eq!(
        balance.balance.amount,
        dec!(-1.80),
        "postpaid charges accrue: 0.60 + 1.20"
    );
    assert_eq!(balance.entries, 2);
}

#[actix_rt::test]
async fn idle_actors_stop_and_come_back_with_their_durable_state() {
    let store = Arc::new(MemoryLedgerStore::new());
    let settings = Settings {
        idle_timeout: std::time::Duration::from_millis(100),
        ..Settings::default()
    };
    let router = router_with(store, settings);
    let pre = SubscriberId::new("pre");
    router
        .send(
            &pre,
            TopUp {
                audit: None,
                id: "t1".into(),
                amount: Money::new(dec!(3.00), Currency::EUR),
            },
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(router.shared().metrics.alive.get(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        router.shared().metrics.alive.get(),
        0,
        "the idle actor stopped"
    );
    let balance = router.send(&pre, GetBalance).await.unwrap().unwrap();
    assert_eq!(
        balance.balance.amount,
        dec!(3.00),
        "a new actor reloads the durable state"
    );
    assert_eq!(router.shared().metrics.alive.get(), 1);
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn voice_cdr(subscriber: &SubscriberId, id: &str, start: &str, units: u64) -> Cdr {
    Cdr {
        id: CdrId::new(id),
        subscriber: subscriber.clone(),
        service: "voice".into(),
        direction: Direction::Outbound,
        caller: None,
        callee: None,
        start: ts(start),
        units: Some(units),
        trunk: None,
        legs: Vec::new(),
        attributes: Default::default(),
    }
}

/// Version 1 (0.60 a minute) from 2026-01-01, version 2 (1.20 a minute) from 2026-03-01.
fn two_versions() -> Timeline {
    Timeline::new(vec![
        (1, ts("2026-01-01T00:00:00Z"), catalogue("0.60")),
        (2, ts("2026-03-01T00:00:00Z"), catalogue("1.20")),
    ])
}

fn rated(outcome: &CdrOutcome) -> (rust_decimal::Decimal, u64) {
    match outcome {
        CdrOutcome::Rated {
            charge,
            catalogue_version,
            ..
        } => (charge.amount, *catalogue_version),
        other => panic!("not rated: {other:?}"),
    }
}

#[actix_rt::test]
async fn each_cdr_is_rated_by_the_version_in_force_at_its_start() {
    let store = Arc::new(MemoryLedgerStore::new());
    let router = router_on(store.clone(), Settings::default(), two_versions());
    let post = SubscriberId::new("post");
    let batch = vec![
        voice_cdr(&post, "before", "2026-02-28T23:59:59Z", 60),
        voice_cdr(&post, "at", "2026-03-01T00:00:00Z", 60),
        voice_cdr(&post, "after", "2026-03-02T09:00:00Z", 61),
        voice_cdr(&post, "too-early", "2025-12-31T23:59:59Z", 60),
    ];
    let outcomes = router
        .send(&post, RateCdrs(batch.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rated(&outcomes[0]), (dec!(0.60), 1));
    assert_eq!(rated(&outcomes[1]), (dec!(1.20), 2));
    assert_eq!(rated(&outcomes[2]), (dec!(2.40), 2));
    match &outcomes[3] {
        CdrOutcome::Suspended { reason, .. } => assert_eq!(reason, "rating.no_catalogue_version"),
        other => panic!("{other:?}"),
    }
    // The usage history names the version of each record.
    let usage: Vec<serde_json::Value> = store
        .recent_usage(&post, 10)
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(r).unwrap())
        .collect();
    let versions: Vec<(String, u64)> = usage
        .iter()
        .map(|u| {
            (
                u["cdr_id"].as_str().unwrap().to_string(),
                u["catalogue_version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        vec![("after".into(), 2), ("at".into(), 2), ("before".into(), 1)]
    );
    // Publishing a version 3 that reprices everything changes nothing for duplicates: they
    // answer what the first answer said.
    router.shared().set_timeline(Arc::new(two_versions().with(
        3,
        ts("2020-01-01T00:00:00Z"),
        catalogue("9.00"),
    )));
    let again = router.send(&post, RateCdrs(batch)).await.unwrap().unwrap();
    let repeated: Vec<_> = again[..3]
        .iter()
        .map(|o| match o {
            CdrOutcome::Duplicate {
                charge,
                catalogue_version,
                ..
            } => (charge.amount, *catalogue_version),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        repeated,
        vec![
            (dec!(0.60), Some(1)),
            (dec!(1.20), Some(2)),
            (dec!(2.40), Some(2))
        ]
    );
    // The CDR that had no version is rated now, by the version 3 in force at its start.
    assert_eq!(rated(&again[3]), (dec!(9.00), 3));
}

#[actix_rt::test]
async fn events_and_sessions_are_priced_by_the_version_in_force_when_they_start() {
    let store = Arc::new(MemoryLedgerStore::new());
    let router = router_on(store, Settings::default(), two_versions());
    let post = SubscriberId::new("post");
    let event = |request: &str, start: &str| {
        let mut usage = usage();
        usage.start = Some(ts(start));
        Charge(SessionRequest::Event {
            request: request.into(),
            usage,
            units: 60,
        })
    };
    let charged = |grant: Result<_, tollgate_domain::ledger::Refusal>| {
        let grant: tollgate_domain::ledger::Grant = grant.unwrap();
        grant.charged.amount
    };
    let old = router
        .send(&post, event("e1", "2026-02-15T12:00:00Z"))
        .await;
    assert_eq!(charged(old.unwrap().unwrap()), dec!(0.60));
    let new = router
        .send(&post, event("e2", "2026-03-01T12:00:00Z"))
        .await;
    assert_eq!(charged(new.unwrap().unwrap()), dec!(1.20));
    let refused = router
        .send(&post, event("e3", "2025-06-01T00:00:00Z"))
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code(), "rating.no_catalogue_version");
    // Without a start, an event is priced at the request time (the clock: 2026-03-02).
    let now = Charge(SessionRequest::Event {
        request: "e4".into(),
        usage: usage(),
        units: 60,
    });
    assert_eq!(
        charged(router.send(&post, now).await.unwrap().unwrap()),
        dec!(1.20)
    );
    // A session that started under version 1 stays on it for all its reports.
    let mut started = usage();
    started.start = Some(ts("2026-02-28T23:59:00Z"));
    let initial = SessionRequest::Initial {
        session: "s".into(),
        request: "1".into(),
        usage: started,
        requested_units: 120,
    };
    router
        .send(&post, Charge(initial))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let end = SessionRequest::Terminate {
        session: "s".into(),
        request: "2".into(),
        used_units: 120,
    };
    let end = router.send(&post, Charge(end)).await.unwrap().unwrap();
    assert_eq!(end.unwrap().session_charged.amount, dec!(1.20));
}

#[actix_rt::test]
async fn swapping_the_timeline_while_batches_are_sent_never_fails_a_cdr() {
    let store = Arc::new(MemoryLedgerStore::new());
    let router = Arc::new(router_on(store, Settings::default(), two_versions()));
    let post = SubscriberId::new("post");
    let only_v1 = Arc::new(Timeline::single(catalogue("0.60")));
    let both = Arc::new(two_versions());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swaps = {
        let (router, stop) = (router.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let next = if n.is_multiple_of(2) { &only_v1 } else { &both };
                router.shared().set_timeline(next.clone());
                n += 1;
                std::thread::yield_now();
            }
            n
        })
    };
    let mut seen = std::collections::HashSet::new();
    for b in 0..40 {
        let batch: Vec<Cdr> = (0..25)
            .map(|i| voice_cdr(&post, &format!("b{b}-{i}"), "2026-03-01T10:00:00Z", 60))
            .collect();
        let outcomes = router.send(&post, RateCdrs(batch)).await.unwrap().unwrap();
        assert_eq!(outcomes.len(), 25);
        let versions: std::collections::HashSet<u64> = outcomes
            .iter()
            .map(|o| {
                let (charge, version) = rated(o);
                let expected = if version == 1 { dec!(0.60) } else { dec!(1.20) };
                assert_eq!(charge, expected, "version {version} priced it");
                version
            })
            .collect();
        assert_eq!(versions.len(), 1, "one snapshot per batch: {versions:?}");
        seen.extend(versions);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swapped = swaps.join().unwrap();
    assert!(swapped > 1, "the timeline was swapped {swapped} times");
    assert!(seen.is_subset(&[1, 2].into()), "{seen:?}");
}

fn voice(subscriber: &SubscriberId, id: &str, units: u64) -> Cdr {
    Cdr {
        id: CdrId::new(id),
        subscriber: subscriber.clone(),
        service: "voice".into(),
        direction: Direction::Outbound,
        caller: None,
        callee: None,
        start: "2026-03-02T09:00:00Z".parse().unwrap(),
        units: Some(units),
        trunk: None,
        legs: Vec::new(),
        attributes: Default::default(),
    }
}

/// One batch transaction over two subscribers: both offer, the coordinator commits their writes
/// together; an aborted batch leaves nothing applied and can be resent.
#[actix_rt::test]
async fn batch_transactions_commit_every_subscriber_together_or_nothing() {
    use tollgate_actors::{BatchTx, RateCdrsIn};
    let store = Arc::new(MemoryLedgerStore::new());
    let router = Arc::new(router(store.clone()));
    let (pre, post) = (SubscriberId::new("pre"), SubscriberId::new("post"));
    router
        .send(
            &pre,
            TopUp {
                audit: None,
                id: "t".into(),
                amount: Money::new(dec!(10), Currency::EUR),
            },
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let commits_before = store.commits();

    let run = |abort: bool| {
        let router = router.clone();
        let store = store.clone();
        let (pre, post) = (pre.clone(), post.clone());
        async move {
            let (tx, mut coordinator) = BatchTx::new(2);
            let sends: Vec<_> = [(pre.clone(), "p1"), (post.clone(), "q1")]
                .into_iter()
                .map(|(s, id)| {
                    let router = router.clone();
                    let msg = RateCdrsIn {
                        cdrs: vec![voice(&s, id, 60)],
                        tx: tx.clone(),
                    };
                    actix::spawn(async move { router.send(&s, msg).await })
                })
                .collect();
            drop(tx);
            let offers = coordinator.offers().await;
            assert_eq!(offers.len(), 2);
            let writes: Vec<_> = offers
                .into_iter()
                .filter_map(|o| o.write.unwrap())
                .collect();
            assert_eq!(writes.len(), 2, "both subscribers change");
            if abort {
                coordinator.decide(Err(tollgate_domain::ledger::StoreError::Io("abort".into())));
            } else {
                store.commit(writes).unwrap();
                coordinator.decide(Ok(()));
            }
            let mut results = Vec::new();
            for s in sends {
                results.push(s.await.unwrap());
            }
            results
        }
    };

    // Aborted: both answer an error; nothing changed.
    for r in run(true).await {
        assert!(matches!(r, Ok(Err(_))), "{:?}", r.map(|x| x.is_ok()));
    }
    let balance = router.send(&pre, GetBalance).await.unwrap().unwrap();
    assert_eq!(balance.balance.amount, dec!(10));
    assert_eq!(store.commits(), commits_before, "nothing was written");

    // Committed: both rated, once, in one write.
    for r in run(false).await {
        let outcomes = r.unwrap().unwrap();
        assert!(matches!(outcomes[0], CdrOutcome::Rated { .. }));
    }
    assert_eq!(
        store.commits(),
        commits_before + 1,
        "one write for both subscribers"
    );
    let balance = router.send(&pre, GetBalance).await.unwrap().unwrap();
    assert_eq!(balance.balance.amount, dec!(9.40));
    // Redelivered: duplicates, nothing written.
    let again = router
        .send(&post, RateCdrs(vec![voice(&post, "q1", 60)]))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(again[0], CdrOutcome::Duplicate { .. }));
}

fn bar(key: &str, reason: Option<&str>) -> SetBarring {
    SetBarring {
        key: key.into(),
        barring: reason.map(SmolStr::new),
        audit: None,
    }
}

fn start(session: &str) -> Charge {
    Charge(SessionRequest::Initial {
        session: session.into(),
        request: "1".into(),
        usage: usage(),
        requested_units: 60,
    })
}

/// Collections bar a subscriber: new sessions are refused with `account.barred`, usage records
/// are still charged, the barring survives a new actor, a replayed key writes nothing, and
/// clearing the barring resumes service.
#[actix_rt::test]
async fn a_barring_refuses_new_sessions_until_cleared_and_survives_a_new_actor() {
    let store = Arc::new(MemoryLedgerStore::new());
    let pre = SubscriberId::new("pre");
    {
        let router = router(store.clone());
        router
            .send(
                &pre,
                TopUp {
                    audit: None,
                    id: "t1".into(),
                    amount: Money::new(dec!(10.00), Currency::EUR),
                },
            )
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let audit = tollgate_domain::admin::AuditRecord::new(
            ts("2026-03-02T10:00:00Z"),
            "collections",
            "subscriber.bar",
            "subscriber/pre",
            "req-1",
            None,
            None,
        );
        let view = router
            .send(
                &pre,
                SetBarring {
                    audit: Some(audit),
                    ..bar("d1", Some("dunning.suspended"))
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(view.barred.as_deref(), Some("dunning.suspended"));
        assert_eq!(view.balance.amount, dec!(10.00));
        let records = store.audit_records();
        assert_eq!(records.len(), 1, "the change is audited with the write");
        assert!(records[0].before.as_ref().unwrap()["barring"].is_null());
        assert_eq!(
            records[0].after.as_ref().unwrap()["barring"]["reason"],
            "dunning.suspended"
        );
        let refused = router
            .send(&pre, start("s1"))
            .await
            .unwrap()
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.code(), "account.barred");
        // Usage that happened anyway is charged.
        let outcomes = router
            .send(&pre, RateCdrs(vec![voice(&pre, "c1", 60)]))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(outcomes[0], CdrOutcome::Rated { .. }));
    }
    // A new actor on the same store (a restart) is still barred.
    let router = router(store.clone());
    let view = router.send(&pre, GetBalance).await.unwrap().unwrap();
    assert_eq!(view.barred.as_deref(), Some("dunning.suspended"));
    assert_eq!(view.balance.amount, dec!(9.40));
    let refused = router
        .send(&pre, start("s2"))
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code(), "account.barred");
    // Replaying the key answers the current view and writes nothing.
    let (commits, entries) = (store.commits(), store.entries(&pre).unwrap().len());
    let stored = store.load_account(&pre).unwrap();
    let replay = router
        .send(&pre, bar("d1", Some("dunning.suspended")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replay, view);
    assert_eq!(store.commits(), commits, "a replay writes nothing");
    assert_eq!(store.entries(&pre).unwrap().len(), entries);
    assert_eq!(store.load_account(&pre).unwrap(), stored);
    // Paid: the barring is cleared and service resumes.
    let view = router.send(&pre, bar("d2", None)).await.unwrap().unwrap();
    assert_eq!(view.barred, None);
    let grant = router
        .send(&pre, start("s3"))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(grant.granted_units, 60);
    // An old key replayed after the clear does not bar again.
    let view = router
        .send(&pre, bar("d1", Some("dunning.suspended")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.barred, None);
    let account = store.load_account(&pre).unwrap().unwrap();
    assert_eq!(account.barring, None);
    account.check(&store.entries(&pre).unwrap()).unwrap();
}

/// Barring twice for the same reason keeps the first barring; a disconnection is never lifted.
#[actix_rt::test]
async fn a_repeated_barring_changes_nothing_and_a_disconnection_is_for_good() {
    let store = Arc::new(MemoryLedgerStore::new());
    let router = router(store.clone());
    let post = SubscriberId::new("post");
    router
        .send(&post, bar("d1", Some("dunning.suspended")))
        .await
        .unwrap()
        .unwrap();
    router
        .send(&post, bar("d2", Some("dunning.suspended")))
        .await
        .unwrap()
        .unwrap();
    let barring = store.load_account(&post).unwrap().unwrap().barring.unwrap();
    assert_eq!(barring.key, "d1", "the first barring stays in force");
    let view = router
        .send(&post, bar("d3", Some("dunning.disconnected")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.barred.as_deref(), Some("dunning.disconnected"));
    let commits = store.commits();
    let view = router.send(&post, bar("d4", None)).await.unwrap().unwrap();
    assert_eq!(
        view.barred.as_deref(),
        Some("dunning.disconnected"),
        "a disconnection cannot be lifted"
    );
    assert_eq!(store.commits(), commits, "nothing was written");
    let refused = router
        .send(&post, start("s1"))
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code(), "account.barred");
}
