//! Crash test: a child process (this test binary, re-executed) commits numbered records from
//! several threads and prints each acknowledged number; the parent SIGKILLs it at random points,
//! reopens the store and checks that every acknowledged record is there, whole.
//!
//! Replay a failure with `TOLLGATE_CRASH_SEED=<printed seed>`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tollgate_adapters::embedded::{EmbeddedStore, StoreConfig, WriteBatch};

const CHILD_STORE_ENV: &str = "TOLLGATE_CRASH_CHILD_STORE";
const CHILD_BASE_ENV: &str = "TOLLGATE_CRASH_CHILD_BASE";
const KILL_POINTS: u64 = 5;
const CHILD_THREADS: usize = 4;
/// A child that is never killed (parent failed) stops on its own.
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(60);

fn payload(number: u64) -> Vec<u8> {
    format!("record-{number}-{}", "x".repeat((number % 200) as usize)).into_bytes()
}

fn store_config(path: &str) -> StoreConfig {
    let mut config = StoreConfig::new(path);
    config.flush_interval = Duration::from_millis(1);
    config.batch_len_max = 32;
    config
}

/// The child's body; a no-op unless the parent set the environment.
#[test]
fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_STORE_ENV) else {
        return;
    };
    let base: u64 = std::env::var(CHILD_BASE_ENV).unwrap().parse().unwrap();
    let store = Arc::new(EmbeddedStore::open(store_config(&path)).unwrap());
    let next = Arc::new(AtomicU64::new(base));
    let started = Instant::now();
    let writers: Vec<_> = (0..CHILD_THREADS)
        .map(|_| {
            let store = Arc::clone(&store);
            let next = Arc::clone(&next);
            std::thread::spawn(move || {
                while started.elapsed() < CHILD_LIFETIME_MAX {
                    let number = next.fetch_add(1, Ordering::SeqCst);
                    let mut batch = WriteBatch::new();
                    batch
                        .put("records", &number.to_be_bytes(), &payload(number))
                        .put("mirror", &number.to_be_bytes(), b"");
                    store.commit(batch).unwrap();
                    // One write per line (stdout is line-buffered), printed only once durable.
                    println!("ack {number} ok");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
}

/// splitmix64: small, seedable, good enough to pick kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn parse_ack(line: &str) -> Option<u64> {
    let mut words = line.split(' ');
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("ack"), Some(number), Some("ok"), None) => number.parse().ok(),
        _ => None,
    }
}

/// Runs one child until it has acknowledged `acks_before_kill` records, waits `extra`, kills it
/// and returns every number it acknowledged.
fn run_and_kill(path: &str, base: u64, acks_before_kill: usize, extra: Duration) -> Vec<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_STORE_ENV, path)
        .env(CHILD_BASE_ENV, base.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(number) = parse_ack(&line) {
                let _ = sender.send(number);
            }
        }
    });
    let mut acks = Vec::new();
    while acks.len() < acks_before_kill {
        match receiver.recv_timeout(Duration::from_secs(30)) {
            Ok(number) => acks.push(number),
            Err(error) => {
                let _ = child.kill();
                panic!(
                    "child stopped acknowledging after {} acks: {error}",
                    acks.len()
                );
            }
        }
    }
    std::thread::sleep(extra);
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush, no close.
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child must die by the signal");
    reader.join().unwrap();
    acks.extend(receiver.try_iter());
    acks
}

#[test]
fn sigkill_at_random_points_loses_no_acknowledged_write() {
    let seed = std::env::var("TOLLGATE_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash test seed {seed} (replay with TOLLGATE_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let path = path.to_str().unwrap();
    let mut acknowledged = BTreeSet::new();

    for round in 0..KILL_POINTS {
        let acks_before_kill = 1 + (rng.next() % 400) as usize;
        let extra = Duration::from_micros(rng.next() % 5_000);
        let started = Instant::now();
        let acks = run_and_kill(path, round * 1_000_000, acks_before_kill, extra);
        let killed_after = started.elapsed();
        acknowledged.extend(acks.iter().copied());

        let reopened = Instant::now();
        let store = EmbeddedStore::open(store_config(path)).unwrap();
        let reopen_duration = reopened.elapsed();
        for &number in &acknowledged {
            let key = number.to_be_bytes();
            assert_eq!(
                store.get("records", &key).unwrap(),
                Some(payload(number)),
                "acknowledged record {number} lost (seed {seed}, round {round})"
            );
        }
        // Atomicity: a batch is both of its rows or neither, acknowledged or not.
        let records = store.scan_prefix("records", b"", usize::MAX).unwrap();
        let mirror = store.scan_prefix("mirror", b"", usize::MAX).unwrap();
        let record_keys: Vec<_> = records.iter().map(|(key, _)| key).collect();
        let mirror_keys: Vec<_> = mirror.iter().map(|(key, _)| key).collect();
        assert_eq!(
            record_keys, mirror_keys,
            "torn batch (seed {seed}, round {round})"
        );
        for (key, value) in &records {
            let number = u64::from_be_bytes(key.as_slice().try_into().unwrap());
            assert_eq!(value, &payload(number));
        }
        // The recovered store takes writes again.
        let mut batch = WriteBatch::new();
        batch.put("rounds", &round.to_be_bytes(), b"recovered");
        store.commit(batch).unwrap();
        println!(
            "round {round}: killed after {} acks ({} requested, +{extra:?}) at {killed_after:?}; \
             {} records durable, {} acknowledged in total, reopen took {reopen_duration:?}",
            acks.len(),
            acks_before_kill,
            records.len(),
            acknowledged.len(),
        );
        store.close().unwrap();
    }
    let store = EmbeddedStore::open(store_config(path)).unwrap();
    assert_eq!(
        store.scan_prefix("rounds", b"", 100).unwrap().len() as u64,
        KILL_POINTS
    );
}
