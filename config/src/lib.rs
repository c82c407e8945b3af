//! Typed configuration of a Tollgate node.
//!
//! Job: parse a TOML file (raw serde structs with `deny_unknown_fields`), apply environment
//! overrides, and validate it into a `NodeConfig` whose defaults run a single node on the
//! embedded store with no external services. Every problem is reported at once, with the key
//! that caused it, so `tollgate check-config` can list them all.
//!
//! Built in Step 2 (the node); nothing lives here yet.
