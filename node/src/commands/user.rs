//! `tollgate user add|list|revoke`: manage API users and tokens on a stopped node's store (the
//! embedded store admits one process; on a running node use the API). Every change is audited
//! with principal `cli`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use smol_str::SmolStr;
use tollgate_config::NodeConfig;

use crate::access::{AccessControl, Attribution, Principal};

/// What `tollgate user` was asked to do.
pub enum UserCommand {
    /// Create a user (unless it exists) and issue a token for it.
    Add {
        /// User name.
        name: String,
        /// Roles for a new user.
        roles: Vec<String>,
        /// Token label.
        label: String,
        /// Token lifetime.
        expires_days: Option<u32>,
    },
    /// List users and their tokens.
    List,
    /// Revoke a token.
    Revoke {
        /// Token id.
        token: String,
    },
}

fn cli_principal() -> Principal {
    Principal {
        user: "cli".into(),
        credential: "local".into(),
        permissions: BTreeSet::new(),
    }
}

/// Runs a user command against the store named by the configuration.
pub fn run(config_path: Option<&Path>, command: UserCommand) -> Result<ExitCode, String> {
    let config = match config_path {
        Some(p) => NodeConfig::load(p),
        None => NodeConfig::from_env(&tollgate_config::EnvVars::from_process()),
    }
    .map_err(|e| format!("configuration:\n{e}"))?;
    let admin = crate::server::open_storage(&config)
        .map(|s| s.admin)
        .map_err(|e| {
            format!("{e}\n(is a node running on this data directory? stop it, or use the API)")
        })?;
    let access = AccessControl::open(admin, &config.auth)?;
    let principal = cli_principal();
    let by = Attribution {
        principal: &principal,
        request_id: "cli",
        at: jiff::Timestamp::now(),
    };
    match command {
        UserCommand::Add {
            name,
            roles,
            label,
            expires_days,
        } => {
            if access.user(&name).is_none() {
                let roles: BTreeSet<SmolStr> = roles.into_iter().map(SmolStr::from).collect();
                access
                    .create_user(&by, &name, roles)
                    .map_err(|e| e.to_string())?;
                println!("user {name} created");
            } else if !roles.is_empty() {
                return Err(format!(
                    "user {name} exists; change its roles through the API (PATCH /v1/users/{name})"
                ));
            }
            let expires_at = match expires_days {
                Some(days) => Some(
                    by.at
                        .checked_add(jiff::SignedDuration::from_hours(i64::from(days) * 24))
                        .map_err(|e| e.to_string())?,
                ),
                None => None,
            };
            let (token, secret) = access
                .create_token(&by, &name, &label, expires_at)
                .map_err(|e| e.to_string())?;
            eprintln!(
                "token {} for {name} (shown once; only its SHA-256 is stored):",
                token.id
            );
            println!("{secret}");
        }
        UserCommand::List => {
            for user in access.users() {
                let roles: Vec<&str> = user.roles.iter().map(SmolStr::as_str).collect();
                println!(
                    "{}{}  roles: {}",
                    user.name,
                    if user.disabled { " (disabled)" } else { "" },
                    roles.join(", ")
                );
                for t in access.tokens(Some(&user.name)) {
                    let state = match (t.revoked_at, t.expires_at) {
                        (Some(at), _) => format!("revoked {at}"),
                        (None, Some(e)) => format!("expires {e}"),
                        (None, None) => "no expiry".into(),
                    };
                    println!("  token {}  {}  {state}", t.id, t.label);
                }
            }
        }
        UserCommand::Revoke { token } => {
            let t = access
                .revoke_token(&by, &token)
                .map_err(|e| e.to_string())?;
            println!("token {} of {} revoked", t.id, t.user);
        }
    }
    Ok(ExitCode::SUCCESS)
}
