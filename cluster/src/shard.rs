//! Shards and their owners.
//!
//! `shard = murmur2(subscriber) & 0x7fffffff % shards`: the same function as Kafka's default
//! partitioner, so a `cdr.raw` topic keyed by subscriber with as many partitions as shards puts
//! each subscriber's records on the partition of its shard.

use serde::{Deserialize, Serialize};

/// Kafka's murmur2 (seed 0x9747b28c), as used by its default partitioner.
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The shard of a subscriber.
pub fn shard_of(subscriber: &str, shards: u32) -> u32 {
    (murmur2(subscriber.as_bytes()) & 0x7fff_ffff) % shards.max(1)
}

/// Who owns a shard, and since which epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// Owner node index.
    pub node: u32,
    /// Epoch; bumped on every move.
    pub epoch: u64,
}

/// The shard map. In a single node it owns every shard at epoch 1; the raft-backed cluster will
/// replicate the same structure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMap {
    owners: Vec<Ownership>,
}

impl ShardMap {
    /// One node (`node`) owning all `shards` shards at epoch 1.
    pub fn single_node(shards: u32, node: u32) -> ShardMap {
        ShardMap {
            owners: vec![Ownership { node, epoch: 1 }; shards.max(1) as usize],
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> u32 {
        self.owners.len() as u32
    }

    /// Shard of a subscriber.
    pub fn shard_of(&self, subscriber: &str) -> u32 {
        shard_of(subscriber, self.shards())
    }

    /// Owner of a shard.
    pub fn owner(&self, shard: u32) -> Option<Ownership> {
        self.owners.get(shard as usize).copied()
    }

    /// Moves a shard to another node, bumping its epoch; returns the new ownership.
    pub fn reassign(&mut self, shard: u32, node: u32) -> Option<Ownership> {
        let o = self.owners.get_mut(shard as usize)?;
        o.node = node;
        o.epoch += 1;
        Some(*o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Reference values from Kafka's UtilsTest (org.apache.kafka.common.utils.Utils.murmur2).
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
        assert_eq!(murmur2(b"abc") as i32, 479470107);
    }

    #[test]
    fn shards_are_stable_and_moves_bump_the_epoch() {
        let mut map = ShardMap::single_node(256, 0);
        let s = map.shard_of("4930111111");
        assert_eq!(s, map.shard_of("4930111111"));
        assert!(s < 256);
        assert_eq!(map.owner(s), Some(Ownership { node: 0, epoch: 1 }));
        assert_eq!(map.reassign(s, 1), Some(Ownership { node: 1, epoch: 2 }));
    }
}
