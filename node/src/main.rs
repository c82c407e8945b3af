//! `tollgate`: the Tollgate binary.
//!
//! Commands: `run` (a node), `demo` (a node with generated traffic), `rate` (offline rating of a
//! CDR file), `check-catalogue`, `check-config`, `user` (API users and tokens).

mod access;
mod api;
mod billing;
mod catalogue_admin;
mod catalogue_file;
mod clock;
mod commands;
mod finance;
mod ingest;
mod jwt;
mod partners;
mod server;
mod sources;
mod subscribers_file;
mod workers;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc instead of the system allocator: the hot paths allocate many small, short-lived
/// values across threads (records, rows, messages), where glibc's arenas cost about a fifth of
/// the CPU of Kafka ingest (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tollgate: telecom mediation, rating, charging and billing.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node until SIGINT/SIGTERM (then drain in-flight work).
    Run {
        /// Configuration file (TOML); defaults when absent. Environment overrides apply.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Start a node on the embedded store with the sample catalogue, drive generated CDRs and
    /// prepaid sessions through it, print a summary, and keep the API up until Ctrl-C.
    Demo {
        /// Seconds of generated traffic.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// API address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Data directory (emptied first).
        #[arg(long, default_value = "tollgate-demo")]
        data_dir: PathBuf,
        /// Exit after the summary instead of serving until Ctrl-C.
        #[arg(long)]
        exit: bool,
    },
    /// Validate a node configuration file and list every problem.
    CheckConfig {
        /// Configuration TOML file.
        file: PathBuf,
    },
    /// Rate a CDR file offline: every record ends up in exactly one of --out or --suspense.
    Rate(RateArgs),
    /// Validate a catalogue file and list every problem with its location.
    CheckCatalogue {
        /// Catalogue TOML file.
        file: PathBuf,
    },
    /// API users and tokens, on a stopped node's store.
    User {
        /// Configuration file (TOML); defaults when absent. Environment overrides apply.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Create a user (if new) with roles, issue a token and print it (once).
    Add {
        /// User name.
        name: String,
        /// Role of a new user (repeat for several): admin, finance, care, partner-manager,
        /// product-manager, network, read-only, or a custom role.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// What the token is for.
        #[arg(long, default_value = "")]
        label: String,
        /// Token lifetime in days (default: no expiry).
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// List users and tokens (never secrets).
    List,
    /// Revoke a token by id.
    Revoke {
        /// Token id.
        token: String,
    },
}

/// Input format of a CDR file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Comma-separated values, with a header line unless the mapping lists `columns`.
    Csv,
    /// One JSON object per line.
    Json,
}

/// Arguments of `tollgate rate`.
#[derive(Debug, clap::Args)]
pub struct RateArgs {
    /// Catalogue TOML file.
    #[arg(long)]
    pub catalogue: PathBuf,
    /// CDR file (CSV or JSON lines).
    #[arg(long)]
    pub cdrs: PathBuf,
    /// Subscribers TOML file (`[[subscribers]]` with id, products, currency, attributes).
    #[arg(long)]
    pub subscribers: PathBuf,
    /// Field mapping TOML file (column names, time format, number normalisation).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Input format; by default taken from the file extension (.csv, .json, .jsonl, .ndjson).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Where rated records go (JSON lines).
    #[arg(long)]
    pub out: PathBuf,
    /// Where records that could not be rated go (JSON lines, with reason codes).
    #[arg(long)]
    pub suspense: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => commands::run::run(config.as_deref()),
        Command::Demo {
            seconds,
            listen,
            data_dir,
            exit,
        } => commands::demo::run(commands::demo::DemoArgs {
            seconds,
            listen,
            data_dir,
            exit,
        }),
        Command::CheckConfig { file } => commands::check_config::run(&file),
        Command::Rate(args) => commands::rate::run(&args),
        Command::CheckCatalogue { file } => commands::check_catalogue::run(&file),
        Command::User { config, action } => commands::user::run(
            config.as_deref(),
            match action {
                UserAction::Add {
                    name,
                    roles,
                    label,
                    expires_days,
                } => commands::user::UserCommand::Add {
                    name,
                    roles,
                    label,
                    expires_days,
                },
                UserAction::List => commands::user::UserCommand::List,
                UserAction::Revoke { token } => commands::user::UserCommand::Revoke { token },
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
