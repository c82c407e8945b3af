//! Which subscribers to load: read from a subscribers TOML file (by mode), or generated from a
//! prefix and a count the same way `prepare` writes them.

use std::path::Path;

use serde::Deserialize;

use crate::LoadError;
use crate::limits::SUBSCRIBERS_MAX;

/// Prefix of the prepaid subscribers `prepare` writes.
pub const PREPAID_PREFIX: &str = "4916";
/// Prefix of the postpaid subscribers `prepare` writes.
pub const POSTPAID_PREFIX: &str = "4930";

/// Prepaid or postpaid, as written in the subscribers file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Spends a balance paid in advance; sessions reserve from it.
    Prepaid,
    /// Accrues charges for the bill.
    #[default]
    Postpaid,
}

/// The `n`-th generated subscriber id under `prefix`.
pub fn generated_id(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:07}")
}

/// `count` generated ids under `prefix`.
pub fn generated(prefix: &str, count: u64) -> Result<Vec<String>, LoadError> {
    if !(1..=SUBSCRIBERS_MAX).contains(&count) {
        return Err(LoadError::Usage(format!(
            "subscriber count {count} is out of range: 1 to {SUBSCRIBERS_MAX}"
        )));
    }
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LoadError::Usage(format!(
            "subscriber prefix {prefix:?} must be digits"
        )));
    }
    Ok((0..count).map(|n| generated_id(prefix, n)).collect())
}

/// The ids of the subscribers of `mode` in a subscribers TOML file, in file order.
pub fn from_file(path: &Path, mode: Mode) -> Result<Vec<String>, LoadError> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        subscribers: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        id: String,
        #[serde(default)]
        mode: Mode,
    }
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::io(path, e))?;
    let file: File = toml::from_str(&text).map_err(|e| LoadError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let ids: Vec<String> = file
        .subscribers
        .into_iter()
        .filter(|s| s.mode == mode)
        .map(|s| s.id)
        .collect();
    if ids.is_empty() {
        return Err(LoadError::Usage(format!(
            "{} has no {mode:?} subscribers",
            path.display()
        )));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_subscribers_of_one_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "[[subscribers]]\nid = \"1\"\nproducts = [\"consumer\"]\nmode = \"prepaid\"\n\
             [[subscribers]]\nid = \"2\"\nproducts = [\"consumer\"]\n",
        )
        .unwrap();
        assert_eq!(from_file(&path, Mode::Prepaid).unwrap(), vec!["1"]);
        assert_eq!(from_file(&path, Mode::Postpaid).unwrap(), vec!["2"]);
    }

    #[test]
    fn generated_ids_are_padded() {
        assert_eq!(
            generated("4916", 2).unwrap(),
            vec!["49160000000", "49160000001"]
        );
        assert!(generated("49x", 2).is_err());
        assert!(generated("49", 0).is_err());
    }
}
