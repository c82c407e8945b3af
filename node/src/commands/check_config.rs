//! `tollgate check-config FILE`.

use std::path::Path;
use std::process::ExitCode;

use tollgate_config::NodeConfig;

/// Validates a configuration file (with the environment overrides in force) and lists every
/// problem; exits with 1 when there is one.
pub fn run(file: &Path) -> Result<ExitCode, String> {
    match NodeConfig::load(file) {
        Ok(config) => {
            println!(
                "{}: ok: node {}, listening on {}, {} shards, storage {}",
                file.display(),
                config.node.id,
                config.http.listen,
                config.shards.count,
                match &config.storage.engine {
                    tollgate_config::StorageEngine::Embedded(e) =>
                        format!("embedded at {}", e.path.display()),
                    tollgate_config::StorageEngine::Scylla(s) =>
                        format!("scylla keyspace {}", s.keyspace),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            println!("{problems}");
            println!("{} problem(s) found", problems.0.len());
            Ok(ExitCode::FAILURE)
        }
    }
}
