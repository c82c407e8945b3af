//! HTTP to the node: a target that can only be `127.0.0.1`, one blocking `ureq` agent per worker
//! (one keep-alive connection each), and answers classified for the report.

use std::time::Duration;

use serde::Deserialize;

use crate::LoadError;
use crate::limits::REQUEST_TIMEOUT_S;

/// The node's base address, `http://127.0.0.1:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    base: String,
}

impl Target {
    /// Accepts `http://127.0.0.1:PORT` (an optional trailing `/`), nothing else: the tool must
    /// never load a machine other than this one.
    pub fn parse(url: &str) -> Result<Target, LoadError> {
        let refuse = |why: &str| {
            LoadError::Usage(format!(
                "--url {url:?}: {why}; only http://127.0.0.1:PORT is allowed"
            ))
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| refuse("not http://"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = rest.split_once(':').ok_or_else(|| refuse("no port"))?;
        if host != "127.0.0.1" {
            return Err(refuse("the host is not 127.0.0.1"));
        }
        let port: u16 = port.parse().map_err(|_| refuse("bad port"))?;
        if port == 0 {
            return Err(refuse("port 0"));
        }
        Ok(Target {
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    /// The full URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The bearer token sent with every request: `$TOLLGATE_TOKEN`, or the loadtest token that
/// `prepare` registers (a node listening on 127.0.0.1 for a benchmark only).
pub fn token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        std::env::var("TOLLGATE_TOKEN")
            .unwrap_or_else(|_| "tg_bootstrap.loadtest-0000000000000000000000000000".into())
    })
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A blocking HTTP agent for one worker thread.
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(REQUEST_TIMEOUT_S))
        .max_idle_connections_per_host(4)
        .build()
}

/// What came back from one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx with its body.
    Success(String),
    /// Any other status: the error key (`"402 ledger.insufficient"`) for the report.
    Refused(String),
    /// No HTTP answer: the error key (`"transport io"`).
    Transport(String),
}

/// Posts `body` as JSON to `url`.
pub fn post_json(agent: &ureq::Agent, url: &str, body: &str) -> Answer {
    match agent
        .post(url)
        .set("Content-Type", "application/json")
        .set("Authorization", &format!("Bearer {}", token()))
        .send_string(body)
    {
        Ok(response) => match response.into_string() {
            Ok(text) => Answer::Success(text),
            Err(e) => Answer::Transport(format!("transport reading body: {}", e.kind())),
        },
        Err(ureq::Error::Status(status, response)) => {
            let code = response
                .into_string()
                .ok()
                .and_then(|text| error_code(&text))
                .unwrap_or_else(|| "-".to_string());
            Answer::Refused(format!("{status} {code}"))
        }
        Err(ureq::Error::Transport(t)) => Answer::Transport(format!("transport {}", t.kind())),
    }
}

/// The stable code of an API error body `{"error":{"code","message"}}`.
pub fn error_code(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        code: String,
    }
    serde_json::from_str::<Body>(body)
        .ok()
        .map(|b| b.error.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_a_target() {
        let t = Target::parse("http://127.0.0.1:18080/").unwrap();
        assert_eq!(t.url("/v1/cdrs"), "http://127.0.0.1:18080/v1/cdrs");
        for bad in [
            "http://10.0.0.1:8080",
            "http://localhost:8080",
            "https://127.0.0.1:8080",
            "http://127.0.0.1",
            "http://127.0.0.1:0",
            "http://127.0.0.1:8080/v1",
            "http://127.0.0.1.example.com:80",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_error_codes() {
        let body = r#"{"error":{"code":"ledger.insufficient","message":"no money"}}"#;
        assert_eq!(error_code(body).as_deref(), Some("ledger.insufficient"));
        assert_eq!(error_code("not json"), None);
    }
}
