//! The audit trail: who did what, when, to which target, with the state before and after.
//!
//! Records are written in the same durable transaction as the change they describe (see
//! [`super::AdminWrite`] and the ledger's `AccountWrite::audit`), so there is never a change
//! without its record. Secrets are removed by [`redact`] before a record is built.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use smol_str::SmolStr;

/// A record id: microseconds since the epoch in the high 64 bits, a process-wide counter in the
/// low 64 bits, so ids sort by time and never collide within a process. Written as 32 hex digits;
/// the storage key is the 16 big-endian bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuditId(pub u128);

static COUNTER: AtomicU64 = AtomicU64::new(0);
static BASE: OnceLock<u64> = OnceLock::new();

impl AuditId {
    /// A fresh id for a record made at `at`. The low half starts from the process's start time
    /// in nanoseconds, so a restarted process does not reuse the ids of its predecessor even
    /// within the same microsecond.
    pub fn next(at: Timestamp) -> AuditId {
        let micros = u64::try_from(at.as_microsecond()).unwrap_or(0);
        let base = *BASE.get_or_init(|| {
            u64::try_from(Timestamp::now().as_nanosecond().rem_euclid(1 << 63)).unwrap_or(0)
        });
        let n = base.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed));
        AuditId((u128::from(micros) << 64) | u128::from(n))
    }

    /// The storage key.
    pub fn key(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// Reads a storage key.
    pub fn from_key(key: &[u8]) -> Option<AuditId> {
        let bytes: [u8; 16] = key.try_into().ok()?;
        Some(AuditId(u128::from_be_bytes(bytes)))
    }

    /// Parses the 32-hex-digit form (used as a pagination cursor).
    pub fn parse(text: &str) -> Option<AuditId> {
        if text.len() != 32 {
            return None;
        }
        u128::from_str_radix(text, 16).ok().map(AuditId)
    }
}

impl fmt::Display for AuditId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl Serialize for AuditId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AuditId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        AuditId::parse(&text).ok_or_else(|| serde::de::Error::custom("bad audit id"))
    }
}

/// One attributable change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Id (time-ordered).
    pub id: AuditId,
    /// When the change was made.
    pub at: Timestamp,
    /// Who made it: a user name, or `system` for the node itself.
    pub principal: SmolStr,
    /// The token or identity provider subject used, if any (never the secret).
    #[serde(default)]
    pub credential: Option<SmolStr>,
    /// What was done, e.g. `catalogue.publish`, `user.create`, `balance.top_up`.
    pub operation: SmolStr,
    /// What it was done to, e.g. `catalogue/version/3`, `user/alice`, `subscriber/491701`.
    pub target: String,
    /// The request that made it.
    pub request_id: SmolStr,
    /// State before (absent for creations).
    #[serde(default)]
    pub before: Option<Value>,
    /// State after (absent for deletions).
    #[serde(default)]
    pub after: Option<Value>,
}

impl AuditRecord {
    /// A record made now-ish at `at`; `before` and `after` are redacted.
    pub fn new(
        at: Timestamp,
        principal: &str,
        operation: &str,
        target: impl Into<String>,
        request_id: &str,
        before: Option<Value>,
        after: Option<Value>,
    ) -> AuditRecord {
        AuditRecord {
            id: AuditId::next(at),
            at,
            principal: principal.into(),
            credential: None,
            operation: operation.into(),
            target: target.into(),
            request_id: request_id.into(),
            before: before.map(redact),
            after: after.map(redact),
        }
    }
}

/// Keys whose values never enter the audit trail.
const SECRET_KEYS: &[&str] = &[
    "secret",
    "secret_sha256",
    "token",
    "password",
    "card_token",
    "card_number",
    "pan",
    "cvv",
];

/// Replaces the value of every secret-looking key (at any depth) with `"[redacted]"`.
pub fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    if SECRET_KEYS.contains(&lower.as_str()) || lower.starts_with("card_") {
                        (k, Value::String("[redacted]".into()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

/// Which records a query wants. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exact principal.
    pub principal: Option<String>,
    /// Exact operation, or a prefix ending in `.` (`catalogue.`).
    pub operation: Option<String>,
    /// Target prefix (`subscriber/` or `catalogue/version/3`).
    pub target_prefix: Option<String>,
    /// Exact request id.
    pub request_id: Option<String>,
    /// Records at or after.
    pub from: Option<Timestamp>,
    /// Records before.
    pub to: Option<Timestamp>,
}

impl AuditFilter {
    /// Whether `record` passes.
    pub fn matches(&self, record: &AuditRecord) -> bool {
        self.principal
            .as_deref()
            .is_none_or(|p| record.principal == p)
            && self.operation.as_deref().is_none_or(|o| {
                if o.ends_with('.') {
                    record.operation.starts_with(o)
                } else {
                    record.operation == o
                }
            })
            && self
                .target_prefix
                .as_deref()
                .is_none_or(|t| record.target.starts_with(t))
            && self
                .request_id
                .as_deref()
                .is_none_or(|r| record.request_id == r)
            && self.from.is_none_or(|f| record.at >= f)
            && self.to.is_none_or(|t| record.at < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_sort_by_time_and_round_trip() {
        let t1: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let t2: Timestamp = "2026-11-23T10:00:01Z".parse().unwrap();
        let a = AuditId::next(t2);
        let b = AuditId::next(t1);
        assert!(b < a);
        assert_eq!(AuditId::parse(&a.to_string()), Some(a));
        assert_eq!(AuditId::from_key(&a.key()), Some(a));
        assert!(b.key() < a.key());
        assert_eq!(AuditId::parse("xyz"), None);
    }

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let v = redact(json!({
            "name": "alice",
            "secret_sha256": "abc",
            "tokens": [{"token": "tg_x", "label": "ci"}],
            "payment": {"card_expiry": "12/29", "amount": "10.00"}
        }));
        assert_eq!(v["name"], "alice");
        assert_eq!(v["secret_sha256"], "[redacted]");
        assert_eq!(v["tokens"][0]["token"], "[redacted]");
        assert_eq!(v["tokens"][0]["label"], "ci");
        assert_eq!(v["payment"]["card_expiry"], "[redacted]");
        assert_eq!(v["payment"]["amount"], "10.00");
    }

    #[test]
    fn filter_matches_fields() {
        let at: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let r = AuditRecord::new(
            at,
            "alice",
            "catalogue.publish",
            "catalogue/version/2",
            "req-1",
            None,
            None,
        );
        assert!(AuditFilter::default().matches(&r));
        let f = AuditFilter {
            operation: Some("catalogue.".into()),
            ..Default::default()
        };
        assert!(f.matches(&r));
        let f = AuditFilter {
            operation: Some("catalogue".into()),
            ..Default::default()
        };
        assert!(!f.matches(&r));
        let f = AuditFilter {
            principal: Some("bob".into()),
            ..Default::default()
        };
        assert!(!f.matches(&r));
        let f = AuditFilter {
            to: Some(at),
            ..Default::default()
        };
        assert!(!f.matches(&r));
        let f = AuditFilter {
            from: Some(at),
            target_prefix: Some("catalogue/".into()),
            ..Default::default()
        };
        assert!(f.matches(&r));
    }
}
