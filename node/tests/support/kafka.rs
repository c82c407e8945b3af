//! A real Kafka-protocol broker for tests: `tansu` (installed by scripts/services/tansu.sh),
//! started on a free 127.0.0.1 port and killed when the guard drops; and `kafka-python`
//! (installed by scripts/services/kafka-python.sh) as a producer independent of our client.

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tansu binary: on PATH or in ~/.cargo/bin.
fn tansu_binary() -> PathBuf {
    if let Ok(out) = Command::new("tansu").arg("--version").output()
        && out.status.success()
    {
        return PathBuf::from("tansu");
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo = PathBuf::from(home).join(".cargo/bin/tansu");
    assert!(
        cargo.exists(),
        "tansu is not installed: run scripts/services/tansu.sh (scripts/test.sh does)"
    );
    cargo
}

/// A running broker, killed on drop.
pub struct Tansu {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Tansu {
    /// A broker keeping its data in SQLite in a temporary directory. (tansu 0.6's `memory://`
    /// engine answers nothing to a fetch from an offset inside a record batch, so a consumer
    /// resuming mid-batch would stall; the SQLite engine serves it correctly.)
    pub fn start() -> Tansu {
        let port = super::free_port();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "sqlite://tansu.db",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut broker = Tansu {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!("tansu exited with {status}");
            }
            assert!(Instant::now() < deadline, "tansu did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    /// `host:port` for clients.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates `name` with `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(tansu_binary())
            .args([
                "topic",
                "create",
                name,
                "--broker",
                &format!("tcp://127.0.0.1:{}", self.port),
                "--partitions",
                &partitions.to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tansu topic create {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produces `(key, value)` records with kafka-python (acks=all, murmur2 key partitioning like
/// the Java client), in order; values are raw bytes (they may be invalid UTF-8).
pub fn produce_with_kafka_python(brokers: &str, topic: &str, records: &[(String, Vec<u8>)]) {
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/kafka-python/bin/python");
    assert!(
        python.exists(),
        "kafka-python is not installed: run scripts/services/kafka-python.sh (scripts/test.sh does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("records.hex");
    let mut file = std::fs::File::create(&data).unwrap();
    for (key, value) in records {
        let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(file, "{key}\t{hex}").unwrap();
    }
    drop(file);
    let script = r#"
import sys
from kafka import KafkaProducer
brokers, topic, path = sys.argv[1], sys.argv[2], sys.argv[3]
p = KafkaProducer(bootstrap_servers=brokers, acks='all', linger_ms=5, retries=5,
                  max_in_flight_requests_per_connection=1, api_version_auto_timeout_ms=10000)
n = 0
with open(path) as f:
    for line in f:
        key, hexval = line.rstrip('\n').split('\t')
        p.send(topic, key=key.encode(), value=bytes.fromhex(hexval))
        n += 1
p.flush(timeout=60)
p.close()
print(n)
"#;
    let out = Command::new(python)
        .args(["-c", script, brokers, topic, data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kafka-python produce failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        records.len().to_string()
    );
}
