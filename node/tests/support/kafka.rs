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

/// One message read back by kafka-python.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub partition: u32,
    pub offset: u64,
    pub key: String,
    pub value: serde_json::Value,
}

/// Reads every message of every partition of `topic` from the beginning up to the end offsets
/// at the time of the call, with kafka-python (independent of our client); values must be JSON.
pub fn consume_with_kafka_python(brokers: &str, topic: &str) -> Vec<Consumed> {
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/kafka-python/bin/python");
    assert!(
        python.exists(),
        "kafka-python is not installed: run scripts/services/kafka-python.sh (scripts/test.sh does)"
    );
    let script = r#"
import json, sys, time
from kafka import KafkaConsumer, TopicPartition
brokers, topic = sys.argv[1], sys.argv[2]
c = KafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False, group_id=None,
                  api_version_auto_timeout_ms=10000)
deadline = time.time() + 60
parts = None
while not parts:
    c.topics()
    parts = c.partitions_for_topic(topic)
    if time.time() > deadline:
        sys.exit("no partitions for " + topic)
tps = [TopicPartition(topic, p) for p in sorted(parts)]
c.assign(tps)
end = c.end_offsets(tps)
for tp in tps:
    c.seek(tp, 0)
# Offsets read so far per partition (position() can spin forever against tansu).
got = {tp: 0 for tp in tps}
while any(got[tp] < end[tp] for tp in tps):
    if time.time() > deadline:
        sys.exit("timed out reading %s: %s of %s" % (topic, got, end))
    for tp, msgs in c.poll(timeout_ms=500).items():
        for m in msgs:
            if m.offset >= end[tp]:
                continue
            got[tp] = m.offset + 1
            print(json.dumps({"partition": m.partition, "offset": m.offset,
                              "key": m.key.decode(), "value": m.value.decode()}))
c.close()
"#;
    let out = Command::new(python)
        .args(["-c", script, brokers, topic])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kafka-python consume failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let m: serde_json::Value = serde_json::from_str(line).unwrap();
            Consumed {
                partition: m["partition"].as_u64().unwrap() as u32,
                offset: m["offset"].as_u64().unwrap(),
                key: m["key"].as_str().unwrap().to_string(),
                value: serde_json::from_str(m["value"].as_str().unwrap()).unwrap(),
            }
        })
        .collect()
}
