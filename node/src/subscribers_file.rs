//! The subscribers file: `[[subscribers]]` entries with id, products (product or bundle ids, in
//! priority order), currency, attributes and mode. Used by `tollgate rate` and as the node's
//! bootstrap file.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use tollgate_domain::catalogue::Catalogue;
use tollgate_domain::ids::SubscriberId;
use tollgate_domain::subscriber::SubscriberProfile;

/// The subscribers file: `[[subscribers]]` entries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribersFile {
    #[serde(default)]
    subscribers: Vec<SubscriberProfile>,
}

/// Reads a subscribers file and checks that every product or bundle it names exists.
pub fn load_subscribers(
    path: &Path,
    catalogue: &Catalogue,
) -> Result<HashMap<SubscriberId, SubscriberProfile>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: SubscribersFile =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut problems = Vec::new();
    let mut out = HashMap::new();
    for (i, s) in file.subscribers.into_iter().enumerate() {
        for p in &s.products {
            if catalogue.offer(p).is_none() {
                problems.push(format!(
                    "{}: subscribers[{i}] ({}): unknown product or bundle {p:?}",
                    path.display(),
                    s.id
                ));
            }
        }
        if out.contains_key(&s.id) {
            problems.push(format!(
                "{}: subscribers[{i}]: duplicate subscriber {}",
                path.display(),
                s.id
            ));
        }
        out.insert(s.id.clone(), s);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("\n"))
    }
}
