//! Cluster layer of Tollgate.
//!
//! Job: a raft group (raft-rs) that replicates the shard map and membership; routing of a
//! subscriber to its shard (`stable_hash(subscriber) % shards`) and to the shard's owner node;
//! owner epochs that fence stale writers; the node-to-node transport (with an in-process
//! transport for deterministic failure tests).
//!
//! Built so far: the shard function and the single-node shard map with epochs. The raft-backed
//! replication of the same map comes with the cluster step.

mod shard;

pub use shard::{Ownership, ShardMap, murmur2, shard_of};
