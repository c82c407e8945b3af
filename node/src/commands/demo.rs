//! `tollgate demo`: a node on the embedded store with the sample catalogue and generated
//! subscribers; a stretch of generated CDRs and concurrent prepaid sessions driven through the
//! same paths the API uses; a corporate customer with a hierarchy and subscriptions
//! ([`super::demo_customers`]); a summary; then the API stays up until Ctrl-C.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rust_decimal::Decimal;
use smol_str::SmolStr;
use tollgate_actors::{CdrOutcome, Charge, Router, TopUp};
use tollgate_config::{EmbeddedConfig, NodeConfig, StorageEngine};
use tollgate_domain::cdr::{Cdr, Direction};
use tollgate_domain::ids::{CdrId, SubscriberId};
use tollgate_domain::ledger::{Mode, SessionRequest, UsageSpec};
use tollgate_domain::money::{Currency, Money};
use tollgate_domain::number::Number;
use tollgate_domain::subscriber::SubscriberProfile;

use crate::api::usage::{rate_records, suspended};
use crate::server;

const CATALOGUE: &str = include_str!("../../../examples/catalogue.toml");
const PREFIXES: &str = include_str!("../../../examples/prefixes.csv");

/// Arguments of the demo.
pub struct DemoArgs {
    /// How long to drive traffic.
    pub seconds: u64,
    /// Where the API listens.
    pub listen: std::net::SocketAddr,
    /// Data directory (created; emptied first).
    pub data_dir: PathBuf,
    /// Stop after the summary instead of serving until Ctrl-C.
    pub exit: bool,
}

/// Deterministic pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const POSTPAID: u64 = 300;
const PREPAID: u64 = 200;

fn subscriber(i: u64) -> SubscriberId {
    SubscriberId::new(format!("4930{:07}", 1_000_000 + i))
}

fn profiles() -> std::collections::HashMap<SubscriberId, SubscriberProfile> {
    (0..POSTPAID + PREPAID)
        .map(|i| {
            let id = subscriber(i);
            let prepaid = i >= POSTPAID;
            let products = if i % 10 == 0 && !prepaid {
                "office"
            } else {
                "consumer"
            };
            let profile = SubscriberProfile {
                id: id.clone(),
                products: vec![SmolStr::new(products)],
                currency: Some(Currency::EUR),
                attributes: [("segment", if i % 3 == 0 { "gold" } else { "standard" })]
                    .into_iter()
                    .collect(),
                mode: if prepaid {
                    Mode::Prepaid
                } else {
                    Mode::Postpaid
                },
            };
            (id, profile)
        })
        .collect()
}

const DESTINATIONS: [&str; 6] = ["4930", "4915", "4917", "33", "1", "39"];

fn callee(rng: &mut Rng) -> Option<Number> {
    let prefix = DESTINATIONS[rng.below(DESTINATIONS.len() as u64) as usize];
    let mut digits = prefix.to_string();
    while digits.len() < 11 {
        digits.push(char::from(b'0' + rng.below(10) as u8));
    }
    // The generator only produces 11 ASCII digits, which always make a valid number.
    Number::from_digits(&digits).ok()
}

#[derive(Default)]
struct Tally {
    rated: u64,
    duplicates: u64,
    suspended: BTreeMap<String, u64>,
    revenue: BTreeMap<String, Decimal>,
    cdr_batches: u64,
    sessions_granted: u64,
    sessions_refused: BTreeMap<String, u64>,
    session_charged: Decimal,
}

async fn drive_cdrs(
    router: Arc<Router>,
    until: Instant,
    seed: u64,
) -> Result<(Tally, Histogram<u64>), String> {
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let mut latency = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut n = 0u64;
    let start = jiff::Timestamp::now().as_second() - 3600;
    let mut previous: Vec<Cdr> = Vec::new();
    while Instant::now() < until {
        let mut batch = Vec::with_capacity(100);
        for _ in 0..100 {
            n += 1;
            let roll = rng.below(100);
            if roll == 0 && !previous.is_empty() {
                // A mediation system resending a record it already sent.
                let again = previous[rng.below(previous.len() as u64) as usize].clone();
                batch.push(Ok(again));
                continue;
            }
            let id = format!("demo-{seed}-{n}");
            let sub = if roll == 1 {
                SubscriberId::new("4930999999999")
            } else {
                subscriber(rng.below(POSTPAID))
            };
            let service = match rng.below(20) {
                0 => "video",
                1..=3 => "sms",
                4 => "data",
                _ => "voice",
            };
            let units = match service {
                "data" => Some(rng.below(10_000_000)),
                "sms" => None,
                _ => Some(1 + rng.below(900)),
            };
            let cdr = Cdr {
                id: CdrId::new(id),
                subscriber: sub.clone(),
                service: SmolStr::new(service),
                direction: Direction::Outbound,
                caller: Number::from_digits(sub.as_str()).ok(),
                callee: callee(&mut rng),
                start: jiff::Timestamp::from_second(start + rng.below(3600) as i64)
                    .unwrap_or_else(|_| jiff::Timestamp::now()),
                units,
                trunk: None,
                legs: Vec::new(),
                attributes: Default::default(),
            };
            if previous.len() < 1000 {
                previous.push(cdr.clone());
            }
            batch.push(Ok(cdr));
        }
        if rng.below(10) == 0 {
            batch.push(Err(suspended(
                "",
                "cdr.bad_timestamp",
                "generated bad record".into(),
            )));
        }
        let sent = Instant::now();
        let outcomes = rate_records(&router, batch)
            .await
            .map_err(|e| e.to_string())?;
        latency
            .record(sent.elapsed().as_micros() as u64)
            .map_err(|e| e.to_string())?;
        tally.cdr_batches += 1;
        for o in outcomes {
            match o {
                CdrOutcome::Rated { charge, .. } => {
                    tally.rated += 1;
                    *tally
                        .revenue
                        .entry(charge.currency.code().to_string())
                        .or_default() += charge.amount;
                }
                CdrOutcome::Duplicate { .. } => tally.duplicates += 1,
                CdrOutcome::Filtered { reason, .. } | CdrOutcome::Suspended { reason, .. } => {
                    *tally.suspended.entry(reason.to_string()).or_default() += 1
                }
            }
        }
    }
    Ok((tally, latency))
}

async fn drive_sessions(
    router: Arc<Router>,
    until: Instant,
    seed: u64,
) -> Result<(Tally, Histogram<u64>), String> {
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let mut latency = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let sub = subscriber(POSTPAID + rng.below(PREPAID));
        let session = smol_str::format_smolstr!("sess-{seed}-{n}");
        let usage = UsageSpec {
            service: "voice".into(),
            direction: Direction::Outbound,
            caller: Number::from_digits(sub.as_str()).ok(),
            callee: callee(&mut rng),
            trunk: None,
            attributes: Default::default(),
            start: None,
        };
        let used = 1 + rng.below(60);
        let steps = [
            SessionRequest::Initial {
                session: session.clone(),
                request: "1".into(),
                usage,
                requested_units: 60,
            },
            SessionRequest::Update {
                session: session.clone(),
                request: "2".into(),
                used_units: 60,
                requested_units: 60,
            },
            SessionRequest::Terminate {
                session: session.clone(),
                request: "3".into(),
                used_units: used,
            },
        ];
        for step in steps {
            let sent = Instant::now();
            let answer = router
                .send(&sub, Charge(step))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            latency
                .record(sent.elapsed().as_micros() as u64)
                .map_err(|e| e.to_string())?;
            match answer {
                Ok(grant) => {
                    tally.sessions_granted += 1;
                    tally.session_charged += grant.charged.amount;
                }
                Err(refusal) => {
                    *tally
                        .sessions_refused
                        .entry(refusal.code().to_string())
                        .or_default() += 1;
                    break;
                }
            }
        }
    }
    Ok((tally, latency))
}

fn percentiles(h: &Histogram<u64>) -> String {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms ({} samples)",
        ms(0.5),
        ms(0.99),
        ms(0.999),
        h.len()
    )
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<ExitCode, String> {
    let _ = std::fs::remove_dir_all(&args.data_dir);
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", args.data_dir.display()))?;
    let catalogue_path = args.data_dir.join("catalogue.toml");
    std::fs::write(&catalogue_path, CATALOGUE).map_err(|e| e.to_string())?;
    std::fs::write(args.data_dir.join("prefixes.csv"), PREFIXES).map_err(|e| e.to_string())?;
    let mut config = NodeConfig::default();
    config.node.data_dir = args.data_dir.clone();
    config.http.listen = args.listen;
    config.catalogue.path = Some(catalogue_path);
    config.storage.engine = StorageEngine::Embedded(EmbeddedConfig {
        path: args.data_dir.join("ledger"),
    });
    // A fresh admin token for this demo run, printed below; only its hash is stored.
    let token = crate::access::new_token("bootstrap").map_err(|e| e.to_string())?;
    config.auth.bootstrap_token_sha256 = Some(crate::access::sha256_hex(token.as_bytes()));
    let mut prepared = server::prepare(config)?;
    prepared.profiles = profiles();
    // The office subscribers (every tenth postpaid one) belong to the demo corporate.
    let office: Vec<String> = (0..6).map(|i| subscriber(i * 10).to_string()).collect();
    let customers_line = super::demo_customers::seed(prepared.customers.as_ref(), &office)?;
    let seconds = args.seconds;
    actix::System::new().block_on(async move {
        let running = server::start(prepared)?;
        let router = running.router.clone();
        super::demo_partners::seed(running.partners()).await?;
        println!("tollgate demo: node on http://{}, {} subscribers, driving traffic for {seconds} s ...", running.addr, POSTPAID + PREPAID);
        for i in POSTPAID..POSTPAID + PREPAID {
            let top = TopUp { id: "welcome".into(), amount: Money::new(Decimal::new(2000, 2), Currency::EUR), audit: None };
            router.send(&subscriber(i), top).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        }
        let started = Instant::now();
        let until = started + Duration::from_secs(seconds);
        let cdr_drivers: Vec<_> = (0..4).map(|s| actix::spawn(drive_cdrs(router.clone(), until, 0x1234 + s))).collect();
        let session_drivers: Vec<_> = (0..32).map(|s| actix::spawn(drive_sessions(router.clone(), until, 0x9876 + s))).collect();
        let mut total = Tally::default();
        let mut cdr_latency = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
        let mut session_latency = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
        for (handles, latency) in [(cdr_drivers, &mut cdr_latency), (session_drivers, &mut session_latency)] {
            for h in handles {
                let (t, l) = h.await.map_err(|e| e.to_string())??;
                latency.add(&l).map_err(|e| e.to_string())?;
                total.rated += t.rated;
                total.duplicates += t.duplicates;
                total.cdr_batches += t.cdr_batches;
                total.sessions_granted += t.sessions_granted;
                total.session_charged += t.session_charged;
                for (k, v) in t.suspended {
                    *total.suspended.entry(k).or_default() += v;
                }
                for (k, v) in t.revenue {
                    *total.revenue.entry(k).or_default() += v;
                }
                for (k, v) in t.sessions_refused {
                    *total.sessions_refused.entry(k).or_default() += v;
                }
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let billing_lines = super::demo_billing::bill_last_month(running.billing()).await?;
        let payment_lines =
            super::demo_billing::pay_first_invoice(running.billing(), running.finance()).await?;
        let partner_lines = super::demo_partners::positions(running.partners()).await?;
        let suspended: u64 = total.suspended.values().sum();
        let ingested = total.rated + total.duplicates + suspended;
        println!("\n== tollgate demo summary ({elapsed:.1} s)");
        println!("CDRs: {ingested} ingested = {} rated + {} duplicates + {suspended} suspended ({:.0} CDRs/s)", total.rated, total.duplicates, ingested as f64 / elapsed);
        println!("  suspended by reason: {:?}", total.suspended);
        println!("  revenue: {}", total.revenue.iter().map(|(c, a)| format!("{c} {a}")).collect::<Vec<_>>().join(", "));
        println!("  batch of 100 latency (durable): {}", percentiles(&cdr_latency));
        println!(
            "sessions: {} requests granted, refused {:?}, charged EUR {}",
            total.sessions_granted, total.sessions_refused, total.session_charged
        );
        println!("  request latency (durable): {}", percentiles(&session_latency));
        println!("{customers_line}");
        println!("{billing_lines}");
        println!("{payment_lines}");
        println!("{partner_lines}");
        let url = format!("http://{}", running.addr);
        println!("\nlook around (admin token for this run: {token}):");
        println!("  export TOLLGATE_TOKEN={token}");
        println!("  curl -H \"Authorization: Bearer $TOLLGATE_TOKEN\" {url}/v1/subscribers/{}/balance", subscriber(POSTPAID));
        println!("  curl -H \"Authorization: Bearer $TOLLGATE_TOKEN\" {url}/v1/subscribers/{}/usage?limit=3", subscriber(1));
        println!("  curl -H \"Authorization: Bearer $TOLLGATE_TOKEN\" {url}/v1/audit");
        println!("  curl -H \"Authorization: Bearer $TOLLGATE_TOKEN\" {url}/v1/accounts/globex-bremen/subtree");
        println!("  curl -H \"Authorization: Bearer $TOLLGATE_TOKEN\" {url}/v1/customers/globex/history");
        println!("  curl -H \"Authorization: Bearer $TOLLGATE_TOKEN\" {url}/v1/bill-runs");
        println!("  curl -H \"Authorization: Bearer $TOLLGATE_TOKEN\" {url}/v1/invoices");
        println!("  curl -H \"Authorization: Bearer $TOLLGATE_TOKEN\" {url}/v1/partners/carrier-b/position");
        println!("  curl {url}/v1/openapi.json\n  curl {url}/metrics");
        if args.exit {
            running.server.stop(true).await;
        } else {
            println!("the API stays up until Ctrl-C");
        }
        running.wait().await?;
        Ok::<(), String>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
