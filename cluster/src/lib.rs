//! Cluster layer of Tollgate.
//!
//! Job: a raft group (raft-rs) that replicates the shard map and membership; routing of a
//! subscriber to its shard (`stable_hash(subscriber) % shards`) and to the shard's owner node;
//! owner epochs that fence stale writers; the node-to-node transport (with an in-process
//! transport for deterministic failure tests).
//!
//! The single-node shard map arrives with Step 2; the raft-backed map later. Nothing lives here
//! yet.
