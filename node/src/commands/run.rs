//! `tollgate run --config FILE`: a node until SIGINT/SIGTERM, then a graceful drain.

use std::path::Path;
use std::process::ExitCode;

use tollgate_config::NodeConfig;

use crate::server;

/// Loads the configuration (or the defaults) and runs the node.
pub fn run(config: Option<&Path>) -> Result<ExitCode, String> {
    let config = match config {
        Some(path) => {
            NodeConfig::load(path).map_err(|problems| format!("{}:\n{problems}", path.display()))?
        }
        None => NodeConfig::from_env(&tollgate_config::EnvVars::from_process())
            .map_err(|p| p.to_string())?,
    };
    let prepared = server::prepare(config)?;
    actix::System::new().block_on(async move {
        let running = server::start(prepared)?;
        println!(
            "tollgate node listening on http://{} (Ctrl-C or SIGTERM to stop)",
            running.addr
        );
        // actix-web stops accepting on SIGINT/SIGTERM and drains in-flight requests; their
        // answers are sent only after their effects are durable.
        running.wait().await?;
        println!("tollgate node stopped: in-flight requests drained");
        Ok::<(), String>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
