//! The subscriber actor with an in-memory store: concurrent sessions never overspend, replays
//! answer the same, CDR batches are charged once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix::Arbiter;
use rust_decimal_macros::dec;
use smol_str::SmolStr;
use tollgate_actors::{
    ActorMetrics, CdrOutcome, Charge, GetBalance, Profiles, RateCdrs, Router, Settings, Shared,
    TopUp,
};
use tollgate_cluster::ShardMap;
use tollgate_domain::catalogue::Catalogue;
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

fn router_with(store: Arc<dyn LedgerStore>, settings: Settings) -> Router {
    let catalogue = Catalogue::from_toml(CATALOGUE, "t.toml", &mut |_| Err(String::new())).unwrap();
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
        catalogue: RwLock::new(Arc::new(catalogue)),
        profiles: Arc::new(Fixed(profiles)),
        store,
        settings,
        metrics: ActorMetrics::new(&prometheus::Registry::new()).unwrap(),
        clock: Arc::new(|| "2026-03-02T10:00:00Z".parse().unwrap()),
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
