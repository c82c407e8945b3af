//! Wiring of a node: configuration -> catalogue, profiles, storage, actors, HTTP server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::Arbiter;
use actix_web::{App, HttpServer, web};
use tollgate_actors::{ActorMetrics, Profiles, Router, Settings, Shared};
use tollgate_adapters::admin::EmbeddedAdminStore;
use tollgate_adapters::bill_runs::EmbeddedBillRunStore;
use tollgate_adapters::customers::EmbeddedCustomerStore;
use tollgate_adapters::embedded::{EmbeddedStore, StoreConfig};
use tollgate_adapters::finance::EmbeddedFinanceStore;
use tollgate_adapters::jobs::JobQueue;
use tollgate_adapters::jobs::amqp::{AmqpConfig, AmqpJobQueue, AmqpQueueType};
use tollgate_adapters::jobs::embedded::EmbeddedJobQueue;
use tollgate_adapters::ledger::EmbeddedLedgerStore;
use tollgate_adapters::mediation::EmbeddedIngestStore;
use tollgate_adapters::partners::EmbeddedPartnerStore;
use tollgate_cluster::ShardMap;
use tollgate_config::{NodeConfig, StorageEngine};
use tollgate_domain::admin::AdminStore;
use tollgate_domain::billing::run::BillRunStore;
use tollgate_domain::catalogue::{Catalogue, Timeline};
use tollgate_domain::finance::FinanceStore;
use tollgate_domain::ids::SubscriberId;
use tollgate_domain::ledger::{LedgerStore, Thresholds};
use tollgate_domain::mediation::IngestStore;
use tollgate_domain::partner::PartnerStore;
use tollgate_domain::subscriber::SubscriberProfile;

use crate::access::AccessControl;
use crate::api::auth::{Access, Gate, RouteTable};
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
    /// Administration storage (users, tokens, catalogue versions, audit), in the same engine.
    pub admin: Arc<dyn AdminStore>,
    /// Ingestion storage (source positions and counters, suspense), in the same engine.
    pub ingest: Arc<dyn IngestStore>,
    /// Customer data (customers, accounts, subscriptions, billing setup), in the same engine.
    pub customers: Arc<dyn tollgate_domain::billing::CustomerStore>,
    /// Bill runs and invoices, in the same engine.
    pub bill_runs: Arc<dyn BillRunStore>,
    /// Payments, periods, notes, dunning and collection runs, in the same engine.
    pub finance: Arc<dyn FinanceStore>,
    /// Partners, agreements, positions, statements and settlement runs, in the same engine.
    pub partners: Arc<dyn PartnerStore>,
    /// The embedded engine (the embedded job queue lives in it).
    pub engine: Arc<EmbeddedStore>,
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
    let Stores {
        ledger: store,
        admin,
        ingest,
        customers,
        bill_runs,
        finance,
        partners,
        engine,
    } = open_storage(&config)?;
    Ok(Prepared {
        config,
        catalogue,
        profiles,
        store,
        admin,
        ingest,
        customers,
        bill_runs,
        finance,
        partners,
        engine,
    })
}

/// The stores of one engine: they commit into the same file, so one batch can span them.
pub struct Stores {
    /// Ledger.
    pub ledger: Arc<dyn LedgerStore>,
    /// Administration (users, tokens, catalogue versions, audit).
    pub admin: Arc<dyn AdminStore>,
    /// Ingestion (positions, counters, suspense).
    pub ingest: Arc<dyn IngestStore>,
    /// Customer data.
    pub customers: Arc<dyn tollgate_domain::billing::CustomerStore>,
    /// Bill runs and invoices.
    pub bill_runs: Arc<dyn BillRunStore>,
    /// Finance state.
    pub finance: Arc<dyn FinanceStore>,
    /// Partner-settlement state.
    pub partners: Arc<dyn PartnerStore>,
    /// The engine itself.
    pub engine: Arc<EmbeddedStore>,
}

/// Opens the storage engine named by the configuration: one embedded store shared by the
/// ledger and the administration data.
pub fn open_storage(config: &NodeConfig) -> Result<Stores, String> {
    match &config.storage.engine {
        StorageEngine::Embedded(embedded) => {
            if let Some(dir) = embedded.path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            let gc = &config.storage.group_commit;
            let mut store_config = StoreConfig::new(&embedded.path);
            store_config.batch_len_max = gc.batch_len_max.max(1);
            store_config.flush_interval = Duration::from_millis(gc.flush_interval_ms);
            let engine = Arc::new(
                EmbeddedStore::open(store_config)
                    .map_err(|e| format!("storage {}: {e}", embedded.path.display()))?,
            );
            Ok(Stores {
                ledger: Arc::new(EmbeddedLedgerStore::with_store(engine.clone())),
                admin: Arc::new(EmbeddedAdminStore::new(engine.clone())),
                customers: Arc::new(EmbeddedCustomerStore::new(engine.clone())),
                bill_runs: Arc::new(EmbeddedBillRunStore::new(engine.clone())),
                finance: Arc::new(EmbeddedFinanceStore::new(engine.clone())),
                partners: Arc::new(EmbeddedPartnerStore::new(engine.clone())),
                engine: engine.clone(),
                ingest: Arc::new(EmbeddedIngestStore::new(engine)),
            })
        }
        StorageEngine::Scylla(_) => {
            Err("the ScyllaDB backend is not built yet; use storage.engine = \"embedded\"".into())
        }
    }
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
    kafka: Option<crate::sources::kafka::NodeKafka>,
    files: Option<crate::sources::files::FileDrop>,
    output: Option<tollgate_adapters::kafka_output::OutboxPublisher>,
}

impl Running {
    /// Bill runs and invoices of this node.
    pub fn billing(&self) -> std::sync::Arc<crate::billing::Billing> {
        self.state.billing.clone()
    }

    /// Payments, periods, notes and collections of this node.
    pub fn finance(&self) -> std::sync::Arc<crate::finance::Finance> {
        self.state.finance.clone()
    }

    /// Partner settlement of this node.
    pub fn partners(&self) -> std::sync::Arc<crate::partners::Partners> {
        self.state.partners.clone()
    }

    /// Waits until the HTTP server has stopped (SIGINT/SIGTERM or a stop call) and drained its
    /// in-flight requests, then stops the actors. Readiness goes red as soon as the stop begins.
    pub async fn wait(self) -> Result<(), String> {
        let Running {
            served,
            arbiters,
            state,
            kafka,
            files,
            output,
            ..
        } = self;
        let result = match served.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        state.ready.store(false, Ordering::Relaxed);
        if let Some(kafka) = kafka {
            // Blocking join of the consumer thread, off this thread: the batch it may be
            // delivering is ingested by a task of this system.
            let _ = tokio::task::spawn_blocking(move || kafka.stop()).await;
        }
        if let Some(files) = files {
            let _ = tokio::task::spawn_blocking(move || files.stop()).await;
        }
        // Last: rows of batches the sources just finished are published if the brokers take
        // them now; what is left stays in the outbox for the next start.
        if let Some(output) = output {
            let _ = tokio::task::spawn_blocking(move || output.stop()).await;
        }
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
        admin,
        ingest,
        customers,
        bill_runs,
        finance: finance_store,
        partners: partner_store,
        engine,
    } = prepared;
    let clock = crate::clock::Clock::new(config.node.test_clock_enabled);
    let access = Arc::new(AccessControl::open(admin, &config.auth)?);
    let declared = api::declared_openapi();
    let mut routes = RouteTable::from_openapi(&declared, &config.auth.public_paths)?;
    let metrics_access = if config.auth.public_paths.contains(&config.metrics.path) {
        Access::Public
    } else {
        Access::Requires(tollgate_domain::admin::Permission::OpsRead)
    };
    routes.insert(
        actix_web::http::Method::GET,
        &config.metrics.path,
        metrics_access,
    );
    let gate = web::Data::new(Gate {
        routes,
        access: access.clone(),
        id_prefix: crate::access::random_hex(8).map_err(|e| e.to_string())?,
    });
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
        catalogue: RwLock::new(Arc::new(Timeline::single(Arc::new(catalogue)))),
        profiles: Arc::new(StaticProfiles(profiles)),
        store: store.clone(),
        settings,
        metrics,
        clock: clock.source(),
        partners: std::sync::OnceLock::new(),
    });
    // Published versions from the store (the configured file becomes version 1 on a new store).
    let catalogue_admin = Arc::new(crate::catalogue_admin::CatalogueAdmin::open(
        access.store().clone(),
        shared.clone(),
        config.catalogue.path.as_deref(),
    )?);
    spawn_dedupe_purge(store.clone(), config.ledger.dedupe_horizon_days);
    let arbiters: Vec<Arbiter> = (0..config.actors.arbiters.resolve().max(1))
        .map(|_| Arbiter::new())
        .collect();
    let handles = arbiters.iter().map(Arbiter::handle).collect();
    let shard_map = ShardMap::single_node(config.shards.count, 0);
    let router = Arc::new(Router::new(shared, shard_map.clone(), 0, handles));
    let default_mapping = match &config.mediation.mapping_path {
        Some(p) => load_mapping(p)?,
        None => tollgate_domain::cdr::CdrMapping::default(),
    };
    let mut ingestor = crate::ingest::Ingestor::new(
        router.clone(),
        ingest,
        default_mapping,
        crate::ingest::Rules::from_config(&config.mediation),
    )
    .map_err(|e| format!("ingestion store: {e}"))?;
    if let Some(p) = config
        .kafka
        .mapping_path
        .as_ref()
        .filter(|_| config.kafka.enabled)
    {
        ingestor.set_source_mapping(
            &crate::sources::kafka::source_name(&config.kafka.topic),
            load_mapping(p)?,
        );
    }
    if let Some(p) = config
        .files
        .mapping_path
        .as_ref()
        .filter(|_| config.files.enabled)
    {
        ingestor.set_source_mapping(crate::sources::files::SOURCE, load_mapping(p)?);
    }
    let pending = if config.kafka.output_enabled {
        let rows = ingestor
            .store()
            .outbox_len()
            .map_err(|e| format!("rated output outbox: {e}"))?;
        let pending = Arc::new(std::sync::atomic::AtomicU64::new(rows));
        ingestor.set_output(crate::ingest::Output {
            rated_topic: config.kafka.rated_topic.as_str().into(),
            suspense_topic: config.kafka.suspense_topic.as_str().into(),
            outbox_len_max: config.kafka.output_outbox_len_max,
            pending: pending.clone(),
        });
        Some(pending)
    } else {
        None
    };
    let ingestor = Arc::new(ingestor);
    ingestor.register_metrics(&registry)?;
    let output = match pending {
        Some(pending) => {
            let metrics = tollgate_adapters::kafka_output::OutputMetrics::new(&registry)
                .map_err(|e| format!("kafka output metrics: {e}"))?;
            let settings = tollgate_adapters::kafka_output::OutputSettings::new(
                config.kafka.output_brokers(),
                &format!("tollgate-{}-output", config.node.id),
            );
            Some(tollgate_adapters::kafka_output::OutboxPublisher::start(
                settings,
                ingestor.store().clone(),
                Some(metrics),
                pending,
            )?)
        }
        None => None,
    };
    let kafka = if config.kafka.enabled {
        let metrics = tollgate_adapters::kafka::KafkaMetrics::new(&registry)
            .map_err(|e| format!("kafka metrics: {e}"))?;
        Some(crate::sources::kafka::NodeKafka::start(
            &config.kafka,
            &config.node.id,
            shard_map.clone(),
            0,
            ingestor.clone(),
            Some(metrics),
        ))
    } else {
        None
    };
    let files = if config.files.enabled {
        Some(crate::sources::files::FileDrop::start(
            &config.files,
            ingestor.clone(),
            &registry,
        )?)
    } else {
        None
    };
    let billing = start_billing(
        &config,
        customers.clone(),
        bill_runs.clone(),
        engine,
        &router,
        store.clone(),
        &registry,
        clock.clone(),
    )?;
    let finance = start_finance(
        &config,
        finance_store.clone(),
        bill_runs.clone(),
        customers.clone(),
        store.clone(),
        &router,
        billing.queue.clone(),
        &registry,
        clock.clone(),
    )?;
    let (partners, partner_arbiter) = start_partners(
        &config,
        PartnerDeps {
            store: partner_store,
            ledger: store.clone(),
            invoices: bill_runs,
            customers: customers.clone(),
            finance: finance_store,
            queue: billing.queue.clone(),
        },
        &router,
        &registry,
        clock.clone(),
    )?;
    let mut arbiters = arbiters;
    arbiters.push(partner_arbiter);
    let state = web::Data::new(AppState {
        router: router.clone(),
        ingestor,
        store,
        access,
        catalogue: catalogue_admin,
        customers,
        billing,
        finance,
        partners,
        clock,
        registry,
        ready: AtomicBool::new(true),
        openapi: api::served_openapi(&declared, &config.auth.public_paths),
        token_ttl_days_default: config.auth.token_ttl_days_default,
        upload_limit_bytes: config.http.upload_limit_bytes,
    });
    let body_limit = config.http.body_limit_bytes;
    let metrics_path = config.metrics.path.clone();
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        use utoipa_actix_web::AppExt;
        let metrics_path = metrics_path.clone();
        App::new()
            .into_utoipa_app()
            .app_data(app_state.clone())
            .app_data(gate.clone())
            .app_data(api::error::json_config(body_limit))
            .app_data(api::error::path_config())
            .app_data(api::error::query_config())
            .app_data(web::PayloadConfig::new(body_limit))
            .configure(api::configure)
            .into_app()
            .route(&metrics_path, web::get().to(api::ops::metrics))
            .wrap(actix_web::middleware::from_fn(api::auth::gate))
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
        kafka,
        files,
        output,
    })
}

/// Reads a record mapping file (field names, number rewrites; docs/cdr-format.md).
fn load_mapping(path: &std::path::Path) -> Result<tollgate_domain::cdr::CdrMapping, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("mapping {}: {e}", path.display()))?;
    tollgate_domain::cdr::CdrMapping::from_toml(&text)
        .map_err(|e| format!("mapping {}: {e}", path.display()))
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

/// The adapter's AMQP settings from the node configuration.
fn amqp_config(settings: &tollgate_config::AmqpSettings, prefetch: u16) -> AmqpConfig {
    let mut c = AmqpConfig::new(settings.url.clone());
    c.queue_prefix = settings.queue_prefix.clone();
    c.prefetch = prefetch;
    c.queue_type = match settings.queue_type {
        tollgate_config::AmqpQueueKind::Quorum => AmqpQueueType::Quorum,
        tollgate_config::AmqpQueueKind::Classic => AmqpQueueType::Classic,
    };
    c.delivery_limit = settings.delivery_limit;
    c.reconnect_backoff_ms_min = settings.reconnect_backoff_ms_min;
    c.reconnect_backoff_ms_max = settings.reconnect_backoff_ms_max;
    c.retry_ms_max = settings.retry_ms_max;
    c.connect_timeout_ms = settings.connect_timeout_ms;
    c.publish_window_len_max = settings.publish_window_len_max;
    c
}

/// Opens the job queue, builds the billing service, starts its worker actor (when this node
/// bills) and the publisher of runs whose jobs are not all published yet.
#[allow(clippy::too_many_arguments)]
fn start_billing(
    config: &NodeConfig,
    customers: Arc<dyn tollgate_domain::billing::CustomerStore>,
    bill_runs: Arc<dyn BillRunStore>,
    engine: Arc<EmbeddedStore>,
    router: &Arc<Router>,
    ledger: Arc<dyn LedgerStore>,
    registry: &prometheus::Registry,
    clock: crate::clock::Clock,
) -> Result<Arc<crate::billing::Billing>, String> {
    let queue: Arc<dyn JobQueue> = match config.jobs.backend {
        tollgate_config::JobsBackend::Embedded => Arc::new(
            EmbeddedJobQueue::open(engine).map_err(|e| format!("embedded job queue: {e}"))?,
        ),
        tollgate_config::JobsBackend::Amqp => Arc::new(
            AmqpJobQueue::new(amqp_config(&config.amqp, config.billing.prefetch))
                .map_err(|e| format!("AMQP job queue ({}): {e}", config.amqp.url_redacted()))?,
        ),
    };
    let timezone = jiff::tz::TimeZone::get(&config.billing.timezone)
        .map_err(|e| format!("billing.timezone: {e}"))?;
    let billing = Arc::new(crate::billing::Billing {
        runs: bill_runs,
        customers,
        ledger,
        profiles: router.shared().profiles.clone(),
        queue,
        timezone,
        series: config.billing.series.clone(),
        attempts_max: config.billing.attempts_max,
        metrics: crate::billing::BillingMetrics::new(registry)
            .map_err(|e| format!("billing metrics: {e}"))?,
        clock,
    });
    if config.billing.workers_enabled {
        let worker = crate::billing::worker::BillWorker {
            billing: billing.clone(),
            prefetch: config.billing.prefetch,
        };
        actix::Supervisor::start(move |_| worker);
    }
    let republisher = billing.clone();
    let every = config.billing.republish_interval();
    actix::spawn(async move {
        loop {
            republisher.republish().await;
            tokio::time::sleep(every).await;
        }
    });
    Ok(billing)
}

/// The stores partner settlement reads and writes.
struct PartnerDeps {
    store: Arc<dyn PartnerStore>,
    ledger: Arc<dyn LedgerStore>,
    invoices: Arc<dyn BillRunStore>,
    customers: Arc<dyn tollgate_domain::billing::CustomerStore>,
    finance: Arc<dyn FinanceStore>,
    queue: Arc<dyn JobQueue>,
}

/// Starts the partner actors (on their own arbiter, told by the subscriber actors when their
/// inboxes fill; every partner's inbox is drained once at start, for records a crash left
/// there), the partner-settlement service, its settlement worker (when this node runs the
/// finance workers) and the publisher of settlement runs not fully published.
fn start_partners(
    config: &NodeConfig,
    deps: PartnerDeps,
    router: &Arc<Router>,
    registry: &prometheus::Registry,
    clock: crate::clock::Clock,
) -> Result<(Arc<crate::partners::Partners>, Arbiter), String> {
    let timezone = jiff::tz::TimeZone::get(&config.billing.timezone)
        .map_err(|e| format!("billing.timezone: {e}"))?;
    let arbiter = Arbiter::new();
    let shared = Arc::new(tollgate_actors::PartnerShared {
        store: deps.store.clone(),
        ledger: deps.ledger.clone(),
        timezone: timezone.clone(),
        metrics: tollgate_actors::partner::PartnerMetrics::new(registry)
            .map_err(|e| format!("partner metrics: {e}"))?,
        waiting_drain_interval: tollgate_actors::partner::WAITING_DRAIN_INTERVAL,
    });
    let partner_router = Arc::new(tollgate_actors::PartnerRouter::new(
        shared,
        arbiter.handle(),
    ));
    let wake: Arc<dyn tollgate_actors::PartnerWake> = partner_router.clone();
    let _ = router.shared().partners.set(wake);
    let metrics = crate::partners::PartnerServiceMetrics::new(registry)
        .map_err(|e| format!("partner metrics: {e}"))?;
    let partners = Arc::new(crate::partners::Partners::new(
        deps.store,
        partner_router,
        deps.invoices,
        deps.customers,
        deps.finance,
        deps.queue,
        timezone,
        clock,
        config.finance.attempts_max,
        metrics,
    ));
    let starter = partners.clone();
    actix::spawn(async move {
        match crate::partners::off_thread({
            let p = starter.clone();
            move || Ok(p.store.partners(None, usize::MAX)?)
        })
        .await
        {
            Ok(all) => {
                for record in all {
                    if let Err(e) = starter.router.drain(&record.partner.id).await {
                        eprintln!(
                            "partners: inbox of {} not drained at start: {e}",
                            record.partner.id
                        );
                    }
                }
            }
            Err(e) => eprintln!("partners: cannot list partners at start: {e}"),
        }
    });
    if config.finance.workers_enabled {
        let worker = crate::partners::settlement::SettlementWorker {
            partners: partners.clone(),
            prefetch: config.finance.prefetch,
        };
        actix::Supervisor::start(move |_| worker);
    }
    let republisher = partners.clone();
    let every = Duration::from_millis(config.finance.republish_interval_ms);
    actix::spawn(async move {
        loop {
            republisher.republish_settlements().await;
            tokio::time::sleep(every).await;
        }
    });
    Ok((partners, arbiter))
}

/// Builds the finance service and starts its collection worker (when this node collects), the
/// publisher of collection runs not fully published, the notification outbox delivery, the
/// daily collection schedule (when enabled), and the convergence of suspended accounts.
#[allow(clippy::too_many_arguments)]
fn start_finance(
    config: &NodeConfig,
    store: Arc<dyn FinanceStore>,
    runs: Arc<dyn BillRunStore>,
    customers: Arc<dyn tollgate_domain::billing::CustomerStore>,
    ledger: Arc<dyn LedgerStore>,
    router: &Arc<Router>,
    queue: Arc<dyn JobQueue>,
    registry: &prometheus::Registry,
    clock: crate::clock::Clock,
) -> Result<Arc<crate::finance::Finance>, String> {
    let timezone = jiff::tz::TimeZone::get(&config.billing.timezone)
        .map_err(|e| format!("billing.timezone: {e}"))?;
    let metrics = crate::finance::FinanceMetrics::new(registry)
        .map_err(|e| format!("finance metrics: {e}"))?;
    let finance = Arc::new(crate::finance::Finance::new(
        store,
        runs,
        customers,
        ledger,
        router.clone(),
        queue,
        timezone,
        clock,
        config.finance.attempts_max,
        metrics,
    ));
    if config.finance.workers_enabled {
        let worker = crate::finance::collection::CollectionWorker {
            finance: finance.clone(),
            prefetch: config.finance.prefetch,
        };
        actix::Supervisor::start(move |_| worker);
    }
    let republisher = finance.clone();
    let every = Duration::from_millis(config.finance.republish_interval_ms);
    actix::spawn(async move {
        republisher.converge_all().await;
        loop {
            republisher.republish_collections().await;
            tokio::time::sleep(every).await;
        }
    });
    let sender: Arc<dyn crate::finance::notify::Sender> = match config.finance.notifications_adapter
    {
        tollgate_config::NotificationsAdapter::File => {
            Arc::new(crate::finance::notify::FileSender::new(
                config.finance.notifications_path(&config.node.data_dir),
            ))
        }
        tollgate_config::NotificationsAdapter::Log => Arc::new(crate::finance::notify::LogSender),
    };
    actix::spawn(crate::finance::notify::deliver_forever(
        finance.clone(),
        sender,
        Duration::from_millis(config.finance.notifications_interval_ms),
    ));
    if config.finance.collection_schedule_enabled {
        actix::spawn(crate::finance::collection::daily(
            finance.clone(),
            config.finance.collection_time.clone(),
        ));
    }
    Ok(finance)
}
