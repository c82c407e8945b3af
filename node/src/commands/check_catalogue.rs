//! `tollgate check-catalogue FILE`.

use std::path::Path;
use std::process::ExitCode;

use crate::catalogue_file::{self, LoadError};

/// Validates a catalogue; prints a summary, or every problem and exits with 1.
pub fn run(file: &Path) -> Result<ExitCode, String> {
    match catalogue_file::load(file) {
        Ok(c) => {
            let rules: usize = c.plans.iter().map(|p| p.rules.len()).sum();
            println!(
                "{}: ok: catalogue {:?}, {} services, {} zones, {} prefixes, {} schedules, {} allowances, {} plans ({} rules), {} products, {} bundles",
                file.display(),
                c.name.as_str(),
                c.services.len(),
                c.zones.len(),
                c.prefix_count(),
                c.schedules.len(),
                c.allowances.len(),
                c.plans.len(),
                rules,
                c.products.len(),
                c.bundles.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(LoadError::Invalid(problems)) => {
            for p in &problems.0 {
                println!("{p}");
            }
            println!("{} problem(s) found", problems.0.len());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.to_string()),
    }
}
