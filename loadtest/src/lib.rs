//! Load generator for Tollgate.
//!
//! Job: drive CDRs (to HTTP, Kafka or files) and real-time sessions against a running node at a
//! chosen rate, and report throughput and latency percentiles (hdrhistogram) as JSON and text.
//!
//! Built in Step 2; nothing lives here yet.
