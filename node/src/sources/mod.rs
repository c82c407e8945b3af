//! Sources of raw records other than the HTTP API: Kafka partitions and dropped files. Each
//! hands batches to the [`crate::ingest::Ingestor`], which makes their effects durable together
//! with the source's position.

pub mod files;
pub mod kafka;
