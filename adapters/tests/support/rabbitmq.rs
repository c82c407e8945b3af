//! The real RabbitMQ for tests: at `TOLLGATE_AMQP_URL` (default 127.0.0.1:5672, guest/guest),
//! started by `scripts/services/rabbitmq.sh` if it is down.
//!
//! Every test that talks to the broker holds a lock on [`LOCK_PATH`]: shared for the ordinary
//! tests (they run in parallel, each under its own queue prefix), exclusive for the restart test
//! (`amqp_restart.rs`), which stops the broker and would break any test running meanwhile, in
//! this test binary, another one, or another worktree's `cargo test` on the same machine.
//! `flock` locks are released by the kernel when the process dies, so a crashed test never
//! leaves the lock behind.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::{File, OpenOptions};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tollgate_adapters::jobs::amqp::AmqpConfig;

/// The lock file every RabbitMQ test takes.
pub const LOCK_PATH: &str = "/tmp/tollgate-rabbitmq.lock";

/// The broker's URL.
pub fn url() -> String {
    std::env::var("TOLLGATE_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A held lock on [`LOCK_PATH`]; released on drop.
pub struct BrokerLock {
    _file: File,
}

fn lock_file() -> File {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_PATH)
        .unwrap()
}

/// The lock of an ordinary test (many at once).
pub fn shared_lock() -> BrokerLock {
    let file = lock_file();
    file.lock_shared().unwrap();
    BrokerLock { _file: file }
}

/// The lock of a test that stops the broker (alone).
pub fn exclusive_lock() -> BrokerLock {
    let file = lock_file();
    file.lock().unwrap();
    BrokerLock { _file: file }
}

/// True when something accepts connections on the AMQP port.
pub fn port_open() -> bool {
    let address: SocketAddr = "127.0.0.1:5672".parse().unwrap();
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
}

/// Makes sure the broker runs (a TCP connect, else the service script).
pub fn ensure_running() {
    if port_open() {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/services/rabbitmq.sh");
    let status = Command::new("bash").arg(&script).status().unwrap();
    assert!(status.success(), "{} failed: {status}", script.display());
}

/// Takes the shared lock and makes sure the broker runs.
pub fn prepare() -> BrokerLock {
    let lock = shared_lock();
    ensure_running();
    lock
}

/// A queue prefix no other test uses.
pub fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("tollgate-test.{test}.{}.{nanos}", std::process::id())
}

/// A configuration for tests: short backoff and retry windows.
pub fn config(test: &str) -> AmqpConfig {
    let mut config = AmqpConfig::new(url());
    config.queue_prefix = unique_prefix(test);
    config.reconnect_backoff_ms_min = 50;
    config.reconnect_backoff_ms_max = 1_000;
    config.retry_ms_max = 30_000;
    config
}

/// `rabbitmqctl ARGS`, its standard output; panics if it fails.
pub fn rabbitmqctl(args: &[&str]) -> String {
    let output = Command::new("rabbitmqctl").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
