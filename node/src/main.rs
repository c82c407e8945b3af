//! `tollgate`: the Tollgate binary.
//!
//! Commands: `rate` (offline rating of a CDR file), `check-catalogue` (validate a catalogue).
//! The node (`run`, `demo`, `check-config`) and the admin API arrive with the next steps.

mod catalogue_file;
mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Tollgate: telecom mediation, rating, charging and billing.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Rate a CDR file offline: every record ends up in exactly one of --out or --suspense.
    Rate(RateArgs),
    /// Validate a catalogue file and list every problem with its location.
    CheckCatalogue {
        /// Catalogue TOML file.
        file: PathBuf,
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
        Command::Rate(args) => commands::rate::run(&args),
        Command::CheckCatalogue { file } => commands::check_catalogue::run(&file),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
