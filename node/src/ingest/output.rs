//! Rated output of the ingestor: the outbox rows (messages for `kafka.rated_topic` and
//! `kafka.suspense_topic`) a batch writes together with its effects.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use jiff::Timestamp;
use smol_str::SmolStr;
use tollgate_actors::CdrOutcome;
use tollgate_domain::mediation::{OutboxRow, SuspenseRecord};

/// Rated output: every rated and every (newly) suspended record gets an outbox row in its
/// batch's write, published to Kafka by the outbox publisher
/// (`tollgate_adapters::kafka_output`).
#[derive(Debug, Clone)]
pub struct Output {
    /// Topic of rated records.
    pub rated_topic: SmolStr,
    /// Topic of suspended records.
    pub suspense_topic: SmolStr,
    /// Most rows waiting in the outbox before new batches are refused.
    pub outbox_len_max: u64,
    /// Rows waiting in the outbox (kept by the publisher, raised by every commit).
    pub pending: Arc<AtomicU64>,
}

impl Output {
    /// The message of a rated record: keyed by subscriber (the partition of its shard).
    pub(super) fn rated(
        &self,
        outcome: &CdrOutcome,
        subscriber: &str,
        source: &str,
        record_id: &str,
        now: Timestamp,
    ) -> Option<OutboxRow> {
        let CdrOutcome::Rated {
            cdr_id,
            charge,
            catalogue_version,
            ..
        } = outcome
        else {
            return None;
        };
        let payload = serde_json::json!({
            "kind": "rated",
            "cdr_id": cdr_id,
            "subscriber": subscriber,
            "charge": charge.amount.to_string(),
            "currency": charge.currency.code(),
            "catalogue_version": catalogue_version,
            "source": source,
            "record_id": record_id,
            "rated_at": now.to_string(),
        });
        Some(OutboxRow {
            topic: self.rated_topic.clone(),
            key: subscriber.as_bytes().to_vec(),
            payload: payload.to_string().into_bytes(),
        })
    }

    /// The message of a suspended record: keyed by its record id; the raw bytes as text when
    /// they are UTF-8, else base64.
    pub(super) fn suspended(&self, row: &SuspenseRecord) -> OutboxRow {
        use base64::Engine;
        let mut payload = serde_json::json!({
            "kind": "suspended",
            "record_id": row.id,
            "source": row.source,
            "reason": row.reason,
            "message": row.message,
            "cdr_id": row.cdr_id,
            "subscriber": row.subscriber,
            "format": row.format,
            "received_at": row.received_at.to_string(),
        });
        match std::str::from_utf8(&row.raw) {
            Ok(text) => payload["raw"] = serde_json::Value::from(text),
            Err(_) => {
                payload["raw_base64"] = serde_json::Value::from(
                    base64::engine::general_purpose::STANDARD.encode(&row.raw),
                )
            }
        }
        OutboxRow {
            topic: self.suspense_topic.clone(),
            key: row.id.as_bytes().to_vec(),
            payload: payload.to_string().into_bytes(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rust_decimal::Decimal;
    use tollgate_domain::mediation::SuspenseState;
    use tollgate_domain::money::{Currency, Money};

    use super::*;

    fn output() -> Output {
        Output {
            rated_topic: "cdr.rated".into(),
            suspense_topic: "cdr.suspense".into(),
            outbox_len_max: 10,
            pending: Arc::new(AtomicU64::new(0)),
        }
    }

    fn json(row: &OutboxRow) -> serde_json::Value {
        serde_json::from_slice(&row.payload).unwrap()
    }

    #[test]
    fn a_rated_record_is_keyed_by_subscriber_and_carries_its_charge() {
        let outcome = CdrOutcome::Rated {
            cdr_id: "c1".into(),
            charge: Money::new(Decimal::new(90, 3), Currency::EUR),
            explanation: String::new(),
            catalogue_version: 3,
        };
        let at = Timestamp::UNIX_EPOCH;
        let row = output()
            .rated(
                &outcome,
                "4930100000",
                "kafka:cdr.raw",
                "kafka:cdr.raw/1/7",
                at,
            )
            .unwrap();
        assert_eq!(row.topic, "cdr.rated");
        assert_eq!(row.key, b"4930100000");
        assert_eq!(
            json(&row),
            serde_json::json!({"kind": "rated", "cdr_id": "c1", "subscriber": "4930100000",
                "charge": "0.090", "currency": "EUR", "catalogue_version": 3,
                "source": "kafka:cdr.raw", "record_id": "kafka:cdr.raw/1/7",
                "rated_at": "1970-01-01T00:00:00Z"})
        );
        let duplicate = CdrOutcome::Duplicate {
            cdr_id: "c1".into(),
            charge: Money::new(Decimal::ZERO, Currency::EUR),
            catalogue_version: None,
        };
        assert!(output().rated(&duplicate, "s", "http", "h", at).is_none());
    }

    #[test]
    fn a_suspended_record_keeps_its_reason_and_raw_bytes() {
        let mut row = SuspenseRecord {
            id: "kafka:cdr.raw/0/4".into(),
            source: "kafka:cdr.raw".into(),
            reason: "cdr.bad_encoding".into(),
            message: "not UTF-8".into(),
            raw: vec![0xff, 0xfe],
            format: "application/json".into(),
            received_at: Timestamp::UNIX_EPOCH,
            last_tried_at: Timestamp::UNIX_EPOCH,
            attempts: 1,
            cdr_id: None,
            subscriber: None,
            state: SuspenseState::Open,
        };
        let message = output().suspended(&row);
        assert_eq!(message.topic, "cdr.suspense");
        assert_eq!(message.key, b"kafka:cdr.raw/0/4");
        let value = json(&message);
        assert_eq!(value["reason"], "cdr.bad_encoding");
        assert_eq!(value["raw_base64"], "//4=");
        assert!(value.get("raw").is_none());
        row.raw = b"{\"id\": 1".to_vec();
        let value = json(&output().suspended(&row));
        assert_eq!(value["raw"], "{\"id\": 1");
        assert!(value.get("raw_base64").is_none());
    }
}
