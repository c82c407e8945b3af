//! Queue names, topology declaration, and the mapping between [`Job`]s and AMQP messages.
//!
//! A job travels as a persistent message whose body is the payload and whose headers carry
//! the run, the item, the attempt and the kind; a dead letter adds the reason code, the
//! message and the time. Nothing of a job is kept in AMQP short strings (255 bytes at most), so
//! run ids and item keys have no length limit beyond the frame size.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, ExchangeKind};

use super::{AmqpConfig, AmqpQueueType};
use crate::jobs::{DeadLetter, Job, JobError, JobKind};

/// Header: the run id (long string).
pub const HEADER_RUN_ID: &str = "tollgate-run-id";
/// Header: the item key (long string).
pub const HEADER_ITEM_KEY: &str = "tollgate-item-key";
/// Header: the attempt (unsigned 32-bit).
pub const HEADER_ATTEMPT: &str = "tollgate-attempt";
/// Header: the job kind (long string), also in the `type` property.
pub const HEADER_KIND: &str = "tollgate-kind";
/// Header of a dead letter: the reason code.
pub const HEADER_REASON_CODE: &str = "tollgate-reason-code";
/// Header of a dead letter: the readable reason.
pub const HEADER_REASON_MESSAGE: &str = "tollgate-reason-message";
/// Header of a dead letter: when, as RFC 3339.
pub const HEADER_DEAD_AT: &str = "tollgate-dead-at";

/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

/// The three broker objects of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNames {
    /// `{prefix}.{kind}`: the jobs.
    pub main: String,
    /// `{prefix}.{kind}.dead`: the dead letters.
    pub dead: String,
    /// `{prefix}.{kind}.dlx`: the direct exchange in front of the dead-letter queue.
    pub dead_letter_exchange: String,
}

impl QueueNames {
    /// The names for `kind` under `prefix`.
    #[must_use]
    pub fn new(prefix: &str, kind: JobKind) -> QueueNames {
        let main = format!("{prefix}.{}", kind.as_str());
        QueueNames {
            dead: format!("{main}.dead"),
            dead_letter_exchange: format!("{main}.dlx"),
            main,
        }
    }
}

pub(crate) fn short(value: &str) -> Result<ShortString, JobError> {
    ShortString::try_new(value)
        .map_err(|_| JobError::invalid(format!("`{value}` is longer than 255 bytes")))
}

fn long(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// Declares the dead-letter exchange and queue, then the main queue of `kind`, and returns
/// the ready message counts `(main, dead)`. Declaring is idempotent while the arguments match;
/// a queue that exists with other arguments closes the channel with PRECONDITION_FAILED.
pub(crate) async fn declare(
    channel: &Channel,
    config: &AmqpConfig,
    kind: JobKind,
) -> Result<(u32, u32), lapin::Error> {
    let names = QueueNames::new(&config.queue_prefix, kind);
    // Lengths were validated with the configuration.
    let dead = ShortString::try_new(names.dead).unwrap_or_default();
    let main = ShortString::try_new(names.main).unwrap_or_default();
    let exchange = ShortString::try_new(names.dead_letter_exchange).unwrap_or_default();
    let mut type_only = FieldTable::default();
    if config.queue_type == AmqpQueueType::Quorum {
        type_only.insert("x-queue-type".into(), long("quorum"));
    }
    channel
        .exchange_declare(
            exchange.clone(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let dead_queue = channel
        .queue_declare(
            dead.clone(),
            QueueDeclareOptions::durable(),
            type_only.clone(),
        )
        .await?;
    channel
        .queue_bind(
            dead.clone(),
            exchange.clone(),
            dead.clone(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut arguments = type_only;
    // Messages the broker itself dead-letters (a quorum queue's delivery limit) go to the same
    // place as the workers' dead letters.
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(exchange.as_str().into()),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(dead.as_str().into()),
    );
    if config.queue_type == AmqpQueueType::Quorum {
        // A message that keeps coming back unacked (it crashes the worker) stops at the limit.
        let limit = i64::from(config.delivery_limit);
        arguments.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(limit));
        // Without these, a quorum queue dead-letters at most once (it may lose the message).
        arguments.insert("x-dead-letter-strategy".into(), long("at-least-once"));
        arguments.insert("x-overflow".into(), long("reject-publish"));
    }
    let main_queue = channel
        .queue_declare(main, QueueDeclareOptions::durable(), arguments)
        .await?;
    Ok((main_queue.message_count(), dead_queue.message_count()))
}

fn job_headers(job: &Job) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert(HEADER_RUN_ID.into(), long(&job.run_id));
    headers.insert(HEADER_ITEM_KEY.into(), long(&job.item_key));
    headers.insert(HEADER_ATTEMPT.into(), AMQPValue::LongUInt(job.attempt));
    headers.insert(HEADER_KIND.into(), long(job.kind.as_str()));
    headers
}

fn properties(headers: FieldTable, kind: JobKind) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_content_type("application/json".into())
        .with_type(kind.as_str().into())
        .with_timestamp(u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0))
        .with_headers(headers)
}

/// The properties of a job's message.
pub(crate) fn job_properties(job: &Job) -> BasicProperties {
    properties(job_headers(job), job.kind)
}

/// The properties of a dead letter's message.
pub(crate) fn dead_properties(dead: &DeadLetter) -> BasicProperties {
    let mut headers = job_headers(&dead.job);
    headers.insert(HEADER_REASON_CODE.into(), long(&dead.reason_code));
    headers.insert(HEADER_REASON_MESSAGE.into(), long(&dead.message));
    headers.insert(HEADER_DEAD_AT.into(), long(&dead.at.to_string()));
    properties(headers, dead.job.kind)
}

/// The properties of a message that is not a job (a foreign or damaged message), moved to the
/// dead-letter queue with its original headers plus the reason.
pub(crate) fn malformed_properties(
    original: &BasicProperties,
    kind: JobKind,
    reason: &str,
) -> BasicProperties {
    let mut headers = original.headers().clone().unwrap_or_default();
    headers.insert(HEADER_REASON_CODE.into(), long("jobs.malformed"));
    headers.insert(HEADER_REASON_MESSAGE.into(), long(reason));
    headers.insert(
        HEADER_DEAD_AT.into(),
        long(&jiff::Timestamp::now().to_string()),
    );
    properties(headers, kind)
}

fn text(headers: &FieldTable, name: &str) -> Option<String> {
    match headers.inner().get(name)? {
        AMQPValue::LongString(value) => String::from_utf8(value.as_bytes().to_vec()).ok(),
        AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
        _ => None,
    }
}

fn number(headers: &FieldTable, name: &str) -> Option<u32> {
    match headers.inner().get(name)? {
        AMQPValue::LongUInt(value) => Some(*value),
        AMQPValue::ShortUInt(value) => Some(u32::from(*value)),
        AMQPValue::ShortShortUInt(value) => Some(u32::from(*value)),
        AMQPValue::LongInt(value) => u32::try_from(*value).ok(),
        AMQPValue::LongLongInt(value) => u32::try_from(*value).ok(),
        AMQPValue::ShortInt(value) => u32::try_from(*value).ok(),
        _ => None,
    }
}

/// The job a message of `kind`'s queue carries, or why it carries none.
pub(crate) fn decode_job(
    kind: JobKind,
    properties: &BasicProperties,
    body: &[u8],
) -> Result<Job, String> {
    let headers = properties
        .headers()
        .as_ref()
        .ok_or_else(|| "the message has no headers".to_owned())?;
    let run_id = text(headers, HEADER_RUN_ID).ok_or_else(|| format!("no {HEADER_RUN_ID}"))?;
    let item_key = text(headers, HEADER_ITEM_KEY).ok_or_else(|| format!("no {HEADER_ITEM_KEY}"))?;
    let attempt = number(headers, HEADER_ATTEMPT).unwrap_or(0);
    if let Some(name) = text(headers, HEADER_KIND)
        && name != kind.as_str()
    {
        return Err(format!("a {name} job in the {kind} queue"));
    }
    let job = Job {
        kind,
        run_id,
        item_key,
        payload: body.to_vec(),
        attempt,
    };
    job.validate().map_err(|error| error.to_string())?;
    Ok(job)
}

/// Why the broker dead-lettered a message on its own (RabbitMQ's `x-first-death-reason`, or
/// the reason of the first `x-death` entry): `delivery_limit`, `rejected`, `expired`, ...
fn broker_death_reason(headers: &FieldTable) -> Option<String> {
    if let Some(reason) = text(headers, "x-first-death-reason") {
        return Some(reason);
    }
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
        return None;
    };
    match deaths.as_slice().first()? {
        AMQPValue::FieldTable(death) => text(death, "reason"),
        _ => None,
    }
}

/// A message of `kind`'s dead-letter queue as a [`DeadLetter`]. Whatever it lacks is filled
/// in rather than refused: a dead letter must never be hidden from the people who look at them.
pub(crate) fn decode_dead(kind: JobKind, properties: &BasicProperties, body: &[u8]) -> DeadLetter {
    let empty = FieldTable::default();
    let headers = properties.headers().as_ref().unwrap_or(&empty);
    let job = Job {
        kind,
        run_id: text(headers, HEADER_RUN_ID).unwrap_or_default(),
        item_key: text(headers, HEADER_ITEM_KEY).unwrap_or_default(),
        payload: body.to_vec(),
        attempt: number(headers, HEADER_ATTEMPT).unwrap_or(0),
    };
    let (reason_code, message) = match text(headers, HEADER_REASON_CODE) {
        Some(code) => (
            code,
            text(headers, HEADER_REASON_MESSAGE).unwrap_or_default(),
        ),
        None => {
            let reason = broker_death_reason(headers).unwrap_or_else(|| "unknown".to_owned());
            (
                format!("jobs.{}", reason.replace('-', "_")),
                format!("dead-lettered by the broker ({reason})"),
            )
        }
    };
    let at = text(headers, HEADER_DEAD_AT)
        .and_then(|at| at.parse().ok())
        .or_else(|| {
            let seconds = (*properties.timestamp())?;
            jiff::Timestamp::from_second(i64::try_from(seconds).ok()?).ok()
        })
        .unwrap_or_else(jiff::Timestamp::now);
    DeadLetter {
        job,
        reason_code,
        message,
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prefix() {
        let names = QueueNames::new("tollgate.jobs", JobKind::BillCycle);
        assert_eq!(names.main, "tollgate.jobs.bill_cycle");
        assert_eq!(names.dead, "tollgate.jobs.bill_cycle.dead");
        assert_eq!(names.dead_letter_exchange, "tollgate.jobs.bill_cycle.dlx");
    }

    #[test]
    fn jobs_and_dead_letters_round_trip_through_properties() {
        let mut job = Job::new(
            JobKind::Collection,
            "run-7",
            &*"a".repeat(400),
            b"{}".to_vec(),
        );
        job.attempt = 3;
        let properties = job_properties(&job);
        assert_eq!(properties.delivery_mode(), &Some(PERSISTENT));
        assert_eq!(
            decode_job(JobKind::Collection, &properties, b"{}"),
            Ok(job.clone())
        );
        assert!(decode_job(JobKind::Settlement, &properties, b"{}").is_err());
        let at: jiff::Timestamp = "2026-01-31T10:00:00Z".parse().unwrap_or_default();
        let dead = DeadLetter {
            job,
            reason_code: "collection.no_mandate".to_owned(),
            message: "no direct-debit mandate".to_owned(),
            at,
        };
        let decoded = decode_dead(JobKind::Collection, &dead_properties(&dead), b"{}");
        assert_eq!(decoded, dead);
    }

    #[test]
    fn foreign_messages_are_refused_with_a_reason() {
        let bare = BasicProperties::default();
        assert_eq!(
            decode_job(JobKind::BillCycle, &bare, b"x"),
            Err("the message has no headers".to_owned())
        );
        let malformed = malformed_properties(&bare, JobKind::BillCycle, "no headers");
        let dead = decode_dead(JobKind::BillCycle, &malformed, b"x");
        assert_eq!(dead.reason_code, "jobs.malformed");
        assert_eq!(dead.job.payload, b"x");
    }

    #[test]
    fn broker_dead_letters_get_a_reason_code() {
        let mut headers = FieldTable::default();
        headers.insert("x-first-death-reason".into(), long("delivery_limit"));
        headers.insert(HEADER_RUN_ID.into(), long("r"));
        let properties = BasicProperties::default().with_headers(headers);
        let dead = decode_dead(JobKind::BillCycle, &properties, b"{}");
        assert_eq!(dead.reason_code, "jobs.delivery_limit");
        assert_eq!(dead.job.run_id, "r");
    }
}
