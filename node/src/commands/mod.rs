//! CLI commands.

pub mod check_catalogue;
pub mod rate;
