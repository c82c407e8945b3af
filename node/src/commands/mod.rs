//! CLI commands.

pub mod check_catalogue;
pub mod check_config;
pub mod demo;
pub mod demo_billing;
pub mod demo_customers;
pub mod demo_partners;
pub mod rate;
pub mod run;
pub mod user;
