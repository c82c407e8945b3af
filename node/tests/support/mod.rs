//! Starting and stopping real `tollgate run` processes for end-to-end tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod kafka;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// The bootstrap admin token every test node accepts (its SHA-256 is in the config).
pub const ADMIN_TOKEN: &str = "tg_bootstrap.0123456789abcdef0123456789abcdef";

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A node's files: config, subscribers, data.
pub struct NodeFiles {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub port: u16,
}

impl NodeFiles {
    pub fn new(subscribers_toml: &str) -> NodeFiles {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let subscribers = dir.path().join("subscribers.toml");
        std::fs::write(&subscribers, subscribers_toml).unwrap();
        let config = dir.path().join("tollgate.toml");
        let text = format!(
            "[node]\ndata_dir = {data:?}\n[http]\nlisten = \"127.0.0.1:{port}\"\nworkers = 2\n\
             [catalogue]\npath = {cat:?}\n[subscribers]\nbootstrap_path = {subs:?}\n\
             [storage.embedded]\npath = {db:?}\n[actors]\narbiters = 2\n\
             [auth]\nbootstrap_token_sha256 = {hash:?}\n\
             [ledger]\ndedupe_horizon_days = 3650\n\
             # Tests rate records of fixed dates; [mediation] comes last so that a test can\n\
             # append keys of it (or new tables).\n\
             [mediation]\npast_days = 3650\n",
            data = dir.path().join("data").display().to_string(),
            cat = examples().join("catalogue.toml").display().to_string(),
            subs = subscribers.display().to_string(),
            db = dir.path().join("data/ledger").display().to_string(),
            hash = sha256_hex(ADMIN_TOKEN.as_bytes()),
        );
        std::fs::write(&config, text).unwrap();
        NodeFiles { dir, config, port }
    }

    /// Uses `catalogue_toml` instead of the sample catalogue.
    pub fn use_catalogue(&self, catalogue_toml: &str) {
        let path = self.dir.path().join("catalogue.toml");
        std::fs::write(&path, catalogue_toml).unwrap();
        let config = std::fs::read_to_string(&self.config).unwrap();
        let sample = format!(
            "path = {:?}",
            examples().join("catalogue.toml").display().to_string()
        );
        let ours = format!("path = {:?}", path.display().to_string());
        assert!(
            config.contains(&sample),
            "the sample catalogue is configured"
        );
        std::fs::write(&self.config, config.replacen(&sample, &ours, 1)).unwrap();
    }

    /// Lets the test set the node's clock (`PUT /v1/test/clock`).
    pub fn enable_test_clock(&self) {
        let config = std::fs::read_to_string(&self.config).unwrap();
        let config = config.replacen("[node]\n", "[node]\ntest_clock_enabled = true\n", 1);
        std::fs::write(&self.config, config).unwrap();
    }

    /// Appends TOML to the node's configuration file.
    pub fn append_config(&self, text: &str) {
        let mut config = std::fs::read_to_string(&self.config).unwrap();
        config.push_str(text);
        std::fs::write(&self.config, config).unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Starts `tollgate run` and waits until /health answers. The process is killed when the
    /// returned guard is dropped, so a failing test leaves no node behind.
    pub fn start(&self) -> NodeProcess {
        // stderr goes to a file (appended across restarts): a pipe nobody reads would block the
        // node once it fills.
        let log_path = self.dir.path().join("node.stderr.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["run", "--config", self.config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if ureq::get(&self.url("/health"))
                .timeout(Duration::from_millis(500))
                .call()
                .is_ok()
            {
                return NodeProcess(child);
            }
            if let Ok(Some(status)) = child.try_wait() {
                let err = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("node exited with {status}: {err}");
            }
            assert!(Instant::now() < deadline, "node did not become healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the node wrote to stderr so far (all runs).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.stderr.log")).unwrap_or_default()
    }
}

/// A running node process, killed on drop.
pub struct NodeProcess(pub Child);

impl NodeProcess {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.0.wait()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, serde_json::Value) {
    match result {
        Ok(r) => (r.status(), r.into_json().unwrap_or(serde_json::Value::Null)),
        Err(ureq::Error::Status(code, r)) => {
            (code, r.into_json().unwrap_or(serde_json::Value::Null))
        }
        Err(e) => (0, serde_json::json!({ "transport": e.to_string() })),
    }
}

/// Sends `method` with an optional token and JSON body; returns (status, body) whatever the
/// status.
pub fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = ureq::request(method, url).timeout(Duration::from_secs(60));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    answer(match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    })
}

/// Sends a raw body with a content type.
pub fn call_raw(
    method: &str,
    url: &str,
    token: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let mut req = ureq::request(method, url)
        .timeout(Duration::from_secs(60))
        .set("Content-Type", content_type);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    answer(req.send_bytes(body))
}

/// POSTs JSON as the bootstrap admin; returns (status, body) whatever the status.
pub fn post(url: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    call("POST", url, Some(ADMIN_TOKEN), Some(body))
}

/// GETs JSON as the bootstrap admin; returns (status, body).
pub fn get(url: &str) -> (u16, serde_json::Value) {
    call("GET", url, Some(ADMIN_TOKEN), None)
}

/// Sends SIGTERM and waits for the exit status.
pub fn terminate(node: &mut NodeProcess) -> std::process::ExitStatus {
    let child = &mut node.0;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "node did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One source's line of `GET /v1/mediation/stats` (null when the source has none yet).
pub fn stats(node: &NodeFiles, source: &str) -> serde_json::Value {
    let (status, body) = get(&node.url("/v1/mediation/stats"));
    assert_eq!(status, 200, "{body}");
    body["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == source)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// `[ingested, rated, suspended, duplicates, filtered]` of a stats line.
pub fn counts(s: &serde_json::Value) -> [u64; 5] {
    ["ingested", "rated", "suspended", "duplicates", "filtered"].map(|k| s[k].as_u64().unwrap())
}

/// GET as the admin, the body as text (documents that are not JSON).
pub fn call_text(url: &str) -> (u16, String) {
    match ureq::get(url)
        .timeout(Duration::from_secs(60))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
    {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("{e}"),
    }
}
