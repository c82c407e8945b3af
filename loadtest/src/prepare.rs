//! `prepare`: a directory with everything a load-test node needs: a configuration, a
//! subscribers file (prepaid and postpaid) and the sample catalogue with its prefixes.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::LoadError;
use crate::limits::SUBSCRIBERS_MAX;
use crate::subscribers::{POSTPAID_PREFIX, PREPAID_PREFIX, generated_id};

const CATALOGUE: &str = include_str!("../../examples/catalogue.toml");
const PREFIXES: &str = include_str!("../../examples/prefixes.csv");

/// What `prepare` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The node configuration (`tollgate run --config` it).
    pub config: PathBuf,
    /// The subscribers file.
    pub subscribers: PathBuf,
}

/// A TOML basic string holding `text`.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The node configuration for a load test rooted at `dir` (absolute), listening on `listen`.
pub fn config_text(dir: &Path, listen: SocketAddr) -> String {
    let path = |name: &str| quoted(&dir.join(name).display().to_string());
    format!(
        "# Written by `tollgate-loadtest prepare`: a single node on the embedded store.\n\
         [node]\ndata_dir = {data}\n\n\
         [http]\nlisten = {listen}\n\n\
         [catalogue]\npath = {catalogue}\n\n\
         [subscribers]\nbootstrap_path = {subscribers}\n\n\
         [storage.embedded]\npath = {ledger}\n\n\
         [log]\nlevel = \"warn\"\n\n\
         # The load generator authenticates with this token (see client::token).\n\
         [auth]\nbootstrap_token_sha256 = {hash}\n",
        data = path("data"),
        listen = quoted(&listen.to_string()),
        catalogue = path("catalogue.toml"),
        subscribers = path("subscribers.toml"),
        ledger = path("data/ledger"),
        hash = quoted(&crate::client::sha256_hex(
            crate::client::token().as_bytes()
        )),
    )
}

/// `count` prepaid and `count` postpaid subscribers on the `consumer` product, in EUR.
pub fn subscribers_text(count: u64) -> String {
    let mut out = String::from(
        "# Written by `tollgate-loadtest prepare`. Prepaid balances come from top-ups the\n\
         # `sessions` command makes at its start (idempotent ids).\n",
    );
    for (prefix, mode) in [(PREPAID_PREFIX, "prepaid"), (POSTPAID_PREFIX, "postpaid")] {
        for n in 0..count {
            let _ = write!(
                out,
                "\n[[subscribers]]\nid = \"{}\"\nproducts = [\"consumer\"]\ncurrency = \"EUR\"\n\
                 mode = \"{mode}\"\nattributes = {{ segment = \"{}\" }}\n",
                generated_id(prefix, n),
                if n % 3 == 0 { "gold" } else { "standard" },
            );
        }
    }
    out
}

/// Writes the configuration, the subscribers and the catalogue into `out` (created).
pub fn run(out: &Path, count: u64, listen: SocketAddr) -> Result<Prepared, LoadError> {
    if !(1..=SUBSCRIBERS_MAX).contains(&count) {
        return Err(LoadError::Usage(format!(
            "subscribers {count} is out of range: 1 to {SUBSCRIBERS_MAX}"
        )));
    }
    if !listen.ip().is_loopback() {
        return Err(LoadError::Usage(format!(
            "listen address {listen} is not a loopback address"
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| LoadError::io(out, e))?;
    let dir = std::fs::canonicalize(out).map_err(|e| LoadError::io(out, e))?;
    let write = |name: &str, text: &str| -> Result<PathBuf, LoadError> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| LoadError::io(&path, e))?;
        Ok(path)
    };
    write("catalogue.toml", CATALOGUE)?;
    write("prefixes.csv", PREFIXES)?;
    let subscribers = write("subscribers.toml", &subscribers_text(count))?;
    let config = write("tollgate.toml", &config_text(&dir, listen))?;
    Ok(Prepared {
        config,
        subscribers,
    })
}

/// Appends a `[kafka]` section enabling the Kafka source on `brokers` and `topic`.
pub fn append_kafka(config: &Path, brokers: &str, topic: &str) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: config.to_path_buf(),
        source,
    };
    let mut text = std::fs::read_to_string(config).map_err(io)?;
    text.push_str(&format!(
        "\n[kafka]\nenabled = true\nbrokers = {}\ntopic = {}\n",
        quoted(brokers),
        quoted(topic)
    ));
    std::fs::write(config, text).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribers::{Mode, from_file};

    #[test]
    fn writes_a_directory_the_other_commands_read() {
        let dir = tempfile::tempdir().unwrap();
        let listen: SocketAddr = "127.0.0.1:18080".parse().unwrap();
        let prepared = run(dir.path(), 3, listen).unwrap();
        let prepaid = from_file(&prepared.subscribers, Mode::Prepaid).unwrap();
        assert_eq!(prepaid, vec!["49160000000", "49160000001", "49160000002"]);
        assert_eq!(
            from_file(&prepared.subscribers, Mode::Postpaid)
                .unwrap()
                .len(),
            3
        );
        let config: toml::Table =
            toml::from_str(&std::fs::read_to_string(&prepared.config).unwrap()).unwrap();
        assert_eq!(config["http"]["listen"].as_str(), Some("127.0.0.1:18080"));
        let catalogue = config["catalogue"]["path"].as_str().unwrap();
        assert!(Path::new(catalogue).is_file());
        assert!(dir.path().join("prefixes.csv").is_file());
        assert!(run(dir.path(), 3, "10.0.0.1:80".parse().unwrap()).is_err());
    }
}
