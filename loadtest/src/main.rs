//! `tollgate-loadtest`: drives a Tollgate node on 127.0.0.1 and reports throughput and latency.
//! See the crate docs of `tollgate_loadtest` and docs/benchmarks.md.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tollgate_loadtest::cdrs::{self, CdrsPlan};
use tollgate_loadtest::client::Target;
use tollgate_loadtest::report::Report;
use tollgate_loadtest::sessions::{self, SessionsPlan};
use tollgate_loadtest::subscribers::{self, Mode, POSTPAID_PREFIX, PREPAID_PREFIX};
use tollgate_loadtest::{LoadError, fsync, prepare};

#[derive(Parser)]
#[command(
    name = "tollgate-loadtest",
    version,
    about = "Load generator for a Tollgate node"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reserve requests (each a new session) at a fixed open-loop rate.
    Sessions(SessionsArgs),
    /// Batches of CDRs as fast as the node makes them durable (closed loop).
    Cdrs(CdrsArgs),
    /// The disk's raw write+fdatasync latency (the floor under every durable answer).
    Fsync(FsyncArgs),
    /// Writes a node configuration, subscribers and the sample catalogue into a directory.
    Prepare(PrepareArgs),
    /// Kafka source: produce records, time the broker's raw consume, then the node's
    /// end-to-end ingestion of the same records.
    Kafka(KafkaArgs),
}

#[derive(Args)]
struct KafkaArgs {
    /// Brokers (the topic must exist; partitions a multiple of the node's shard count).
    #[arg(long)]
    brokers: String,
    /// Topic (as in the node's `[kafka] topic`).
    #[arg(long, default_value = "cdr.raw")]
    topic: String,
    /// Records to produce and ingest.
    #[arg(long, default_value_t = 500_000)]
    records: u64,
    /// The node's configuration (written by `prepare --kafka-brokers ...`).
    #[arg(long)]
    config: PathBuf,
    /// The `tollgate` binary (default: next to this one).
    #[arg(long)]
    node_binary: Option<PathBuf>,
    /// Node base URL (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:18080")]
    url: String,
    #[command(flatten)]
    who: Who,
    /// Tag in record ids (default: the current Unix time).
    #[arg(long)]
    run_tag: Option<String>,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Which subscribers to load.
#[derive(Args)]
struct Who {
    /// Subscribers TOML file (`[[subscribers]]` with `mode`); the command picks its mode.
    #[arg(long, conflicts_with = "subscriber_prefix")]
    subscribers_file: Option<PathBuf>,
    /// Prefix of generated ids (as `prepare` writes them: prefix + 7 digits).
    #[arg(long)]
    subscriber_prefix: Option<String>,
    /// How many generated ids.
    #[arg(long, default_value_t = 10_000)]
    subscriber_count: u64,
}

impl Who {
    fn ids(&self, mode: Mode, default_prefix: &str) -> Result<Vec<String>, LoadError> {
        match &self.subscribers_file {
            Some(path) => subscribers::from_file(path, mode),
            None => subscribers::generated(
                self.subscriber_prefix.as_deref().unwrap_or(default_prefix),
                self.subscriber_count,
            ),
        }
    }
}

#[derive(Args)]
struct SessionsArgs {
    /// The node: http://127.0.0.1:PORT (nothing else is accepted).
    #[arg(long)]
    url: String,
    #[command(flatten)]
    who: Who,
    /// Reservations per second (open loop).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Length of the schedule in seconds.
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Worker threads, i.e. most requests in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Units each reservation asks for.
    #[arg(long, default_value_t = 60)]
    requested_units: u64,
    /// Terminate each granted session right away (half the units used).
    #[arg(long)]
    terminate: bool,
    /// Skip the initial top-ups.
    #[arg(long)]
    no_top_up: bool,
    /// Amount of the initial top-up of each subscriber.
    #[arg(long, default_value = "1000.00")]
    top_up_amount: String,
    /// Currency of the top-up.
    #[arg(long, default_value = "EUR")]
    top_up_currency: String,
    /// Idempotency key prefix of the top-ups (same key = no second top-up).
    #[arg(long, default_value = "loadtest-initial")]
    top_up_key: String,
    /// Tag in session ids (default: the current Unix time, so runs do not collide).
    #[arg(long)]
    run_tag: Option<String>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct CdrsArgs {
    /// The node: http://127.0.0.1:PORT (nothing else is accepted).
    #[arg(long)]
    url: String,
    #[command(flatten)]
    who: Who,
    /// Records per request.
    #[arg(long, default_value_t = 1000)]
    batch_len: usize,
    /// How long to post, in seconds.
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Worker threads, i.e. batches in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Tag in CDR ids (default: the current Unix time, so runs do not collide).
    #[arg(long)]
    run_tag: Option<String>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct FsyncArgs {
    /// Directory on the disk to measure (the node's data directory).
    #[arg(long)]
    dir: PathBuf,
    /// Write+fdatasync rounds.
    #[arg(long, default_value_t = 2000)]
    samples: usize,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct PrepareArgs {
    /// Directory to write into (created).
    #[arg(long)]
    out: PathBuf,
    /// Prepaid subscribers, and as many postpaid.
    #[arg(long, default_value_t = 10_000)]
    subscribers: u64,
    /// Address the node listens on (loopback only).
    #[arg(long, default_value = "127.0.0.1:18080")]
    listen: SocketAddr,
    /// Enable the node's Kafka source on these brokers.
    #[arg(long)]
    kafka_brokers: Option<String>,
    /// Topic of the Kafka source.
    #[arg(long, default_value = "cdr.raw")]
    kafka_topic: String,
}

fn run_tag(tag: Option<String>) -> String {
    tag.unwrap_or_else(|| jiff::Timestamp::now().as_second().to_string())
}

fn emit(report: &Report, json: Option<&Path>) -> Result<(), LoadError> {
    print!("{}", report.to_text());
    if let Some(path) = json {
        report.write_json(path)?;
        println!("report written to {}", path.display());
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), LoadError> {
    match cli.command {
        Command::Sessions(a) => {
            let plan = SessionsPlan {
                target: Target::parse(&a.url)?,
                subscribers: a.who.ids(Mode::Prepaid, PREPAID_PREFIX)?,
                rate_per_s: a.rate,
                duration_s: a.duration_s,
                concurrency: a.concurrency,
                requested_units: a.requested_units,
                terminate: a.terminate,
                top_up: (!a.no_top_up).then_some((
                    a.top_up_key,
                    a.top_up_amount,
                    a.top_up_currency,
                )),
                run_tag: run_tag(a.run_tag),
            };
            emit(&sessions::run(&plan)?, a.json.as_deref())
        }
        Command::Cdrs(a) => {
            let plan = CdrsPlan {
                target: Target::parse(&a.url)?,
                subscribers: a.who.ids(Mode::Postpaid, POSTPAID_PREFIX)?,
                batch_len: a.batch_len,
                duration_s: a.duration_s,
                concurrency: a.concurrency,
                run_tag: run_tag(a.run_tag),
            };
            emit(&cdrs::run(&plan)?, a.json.as_deref())
        }
        Command::Kafka(a) => {
            let node_binary = match a.node_binary {
                Some(p) => p,
                None => std::env::current_exe()
                    .map_err(|e| LoadError::Usage(e.to_string()))?
                    .with_file_name("tollgate"),
            };
            let plan = tollgate_loadtest::kafka::KafkaPlan {
                brokers: a.brokers,
                topic: a.topic,
                records: a.records,
                subscribers: a.who.ids(Mode::Postpaid, POSTPAID_PREFIX)?,
                node_binary,
                node_config: a.config,
                target: Target::parse(&a.url)?,
                run_tag: run_tag(a.run_tag),
            };
            emit(&tollgate_loadtest::kafka::run(&plan)?, a.json.as_deref())
        }
        Command::Fsync(a) => emit(&fsync::run(&a.dir, a.samples)?, a.json.as_deref()),
        Command::Prepare(a) => {
            let prepared = prepare::run(&a.out, a.subscribers, a.listen)?;
            if let Some(brokers) = &a.kafka_brokers {
                prepare::append_kafka(&prepared.config, brokers, &a.kafka_topic)?;
            }
            println!(
                "wrote {} and {}\nstart the node with: tollgate run --config {}",
                prepared.config.display(),
                prepared.subscribers.display(),
                prepared.config.display()
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate-loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}
