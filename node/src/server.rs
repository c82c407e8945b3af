//! Wiring of a node: configuration -> catalogue, profiles, storage, actors, HTTP server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::Arbiter;
use actix_web::{App, HttpServer, web};
use tollgate_actors::{ActorMetrics, Profiles, Router, Settings, Shared};
use tollgate_cluster::ShardMap;
use tollgate_config::{NodeConfig, StorageEngine};
use tollgate_domain::catalogue::Catalogue;
use tollgate_domain::ids::SubscriberId;
use tollgate_domain::ledger::{LedgerStore, Thresholds};
use tollgate_domain::subscriber::SubscriberProfile;

use crate::api::{self, AppState};
use crate::catalogue_file;

/// Profiles provisioned from the bootstrap file.
pub struct StaticProfiles(pub HashMap<SubscriberId, SubscriberProfile>);

impl Profiles for StaticProfiles {
    fn get(&self, id: &SubscriberId) -> Option<SubscriberProfile> {
        self.0.get(id).cloned()
    }
}

/// Everything a node needs before it starts serving.
pub struct Prepared {
    /// Configuration.
    pub config: NodeConfig,
    /// Catalogue.
    pub catalogue: Catalogue,
    /// Subscriber profiles.
    pub profiles: HashMap<SubscriberId, SubscriberProfile>,
    /// Storage.
    pub store: Arc<dyn LedgerStore>,
}

/// Loads the catalogue, the profiles and opens the storage named by the configuration.
pub fn prepare(config: NodeConfig) -> Result<Prepared, String> {
    let path =
        config.catalogue.path.clone().ok_or(
            "catalogue.path is not set: a node needs a catalogue (see docs/configuration.md)",
        )?;
    let catalogue =
        catalogue_file::load(&path).map_err(|e| format!("catalogue {}:\n{e}", path.display()))?;
    let profiles = match &config.subscribers.bootstrap_path {
        Some(p) => crate::subscribers_file::load_subscribers(p, &catalogue)?,
        None => HashMap::new(),
    };
    let store: Arc<dyn LedgerStore> = match &config.storage.engine {
        StorageEngine::Embedded(embedded) => {
            if let Some(dir) = embedded.path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            let gc = &config.storage.group_commit;
            Arc::new(
                tollgate_adapters::ledger::EmbeddedLedgerStore::open(
                    &embedded.path,
                    gc.batch_len_max,
                    Duration::from_millis(gc.flush_interval_ms),
                )
                .map_err(|e| format!("storage {}: {e}", embedded.path.display()))?,
            )
        }
        StorageEngine::Scylla(_) => {
            return Err(
                "the ScyllaDB backend is not built yet; use storage.engine = \"embedded\"".into(),
            );
        }
    };
    Ok(Prepared {
        config,
        catalogue,
        profiles,
        store,
    })
}

/// A running node: its router (for in-process drivers such as the demo) and its HTTP server.
pub struct Running {
    /// Subscriber actors.
    pub router: Arc<Router>,
    /// HTTP server handle (stop it to drain and shut down).
    pub server: actix_web::dev::ServerHandle,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Address bound.
    pub addr: std::net::SocketAddr,
    state: web::Data<AppState>,
    arbiters: Vec<Arbiter>,
}

impl Running {
    /// Waits until the HTTP server has stopped (SIGINT/SIGTERM or a stop call) and drained its
    /// in-flight requests, then stops the actors. Readiness goes red as soon as the stop begins.
    pub async fn wait(self) -> Result<(), String> {
        let Running {
            served,
            arbiters,
            state,
            ..
        } = self;
        let result = match served.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        state.ready.store(false, Ordering::Relaxed);
        for a in arbiters {
            a.stop();
        }
        result
    }
}

/// Starts actors and the HTTP server inside the current actix system.
pub fn start(prepared: Prepared) -> Result<Running, String> {
    let Prepared {
        config,
        catalogue,
        profiles,
        store,
    } = prepared;
    let registry = prometheus::Registry::new();
    let metrics = ActorMetrics::new(&registry).map_err(|e| e.to_string())?;
    let settings = Settings {
        reservation_ttl_s: config.sessions.reservation_ttl_s,
        grant_units_max: config.sessions.grant_units_max,
        thresholds: Thresholds {
            suspend_below: config.thresholds.suspend_below,
            resume_at_or_above: config.thresholds.resume_at_or_above,
        },
        idle_timeout: Duration::from_secs(config.actors.idle_timeout_s),
        mailbox_capacity: config.actors.mailbox_capacity,
        ..Settings::default()
    };
    let shared = Arc::new(Shared {
        catalogue: RwLock::new(Arc::new(catalogue)),
        profiles: Arc::new(StaticProfiles(profiles)),
        store: store.clone(),
        settings,
        metrics,
        clock: Arc::new(jiff::Timestamp::now),
    });
    spawn_dedupe_purge(store.clone(), config.ledger.dedupe_horizon_days);
    let arbiters: Vec<Arbiter> = (0..config.actors.arbiters.resolve().max(1))
        .map(|_| Arbiter::new())
        .collect();
    let handles = arbiters.iter().map(Arbiter::handle).collect();
    let router = Arc::new(Router::new(
        shared,
        ShardMap::single_node(config.shards.count, 0),
        0,
        handles,
    ));
    let state = web::Data::new(AppState {
        router: router.clone(),
        store,
        registry,
        ready: AtomicBool::new(true),
    });
    let body_limit = config.http.body_limit_bytes;
    let metrics_path = config.metrics.path.clone();
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        let metrics_path = metrics_path.clone();
        App::new()
            .app_data(app_state.clone())
            .app_data(api::error::json_config(body_limit))
            .app_data(web::PayloadConfig::new(body_limit))
            .configure(|cfg| api::routes(cfg, &metrics_path))
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(api::error::ApiError::new(
                    actix_web::http::StatusCode::NOT_FOUND,
                    "route.unknown",
                    "no such route",
                ))
            }))
    })
    .workers(config.http.workers.resolve().max(1))
    .shutdown_timeout(30)
    .bind(config.http.listen)
    .map_err(|e| format!("cannot listen on {}: {e}", config.http.listen))?;
    let addr = server.addrs().first().copied().ok_or("no address bound")?;
    let server = server.run();
    let handle = server.handle();
    // The server future drives accepting and stopping: it runs on its own task.
    let served = actix::spawn(server);
    Ok(Running {
        router,
        server: handle,
        served,
        addr,
        state,
        arbiters,
    })
}

/// Every hour (and at start), forgets idempotency answers older than the dedupe horizon, on a
/// blocking thread so the actors never wait for it.
fn spawn_dedupe_purge(store: Arc<dyn LedgerStore>, horizon_days: u32) {
    actix::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let horizon_s = i64::from(horizon_days) * 86_400;
            let Ok(before) =
                jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - horizon_s)
            else {
                continue;
            };
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.purge_answers(before)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    eprintln!("dedupe: forgot {n} idempotency keys older than {horizon_days} days")
                }
                Ok(Err(e)) => eprintln!("dedupe: purge failed ({}): {e}", e.code()),
                Err(e) => eprintln!("dedupe: purge task failed: {e}"),
            }
        }
    });
}
