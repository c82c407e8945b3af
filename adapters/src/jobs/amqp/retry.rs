//! Connecting, backoff and retry deadlines, shared by the publisher and the consumers.

use std::time::{Duration, Instant};

use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::{Connection, ConnectionProperties};

use super::AmqpConfig;
use crate::jobs::JobError;

/// Exponential backoff with jitter between `min` and `max`.
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(config: &AmqpConfig) -> Backoff {
        let min = Duration::from_millis(config.reconnect_backoff_ms_min);
        Backoff {
            min,
            max: Duration::from_millis(config.reconnect_backoff_ms_max),
            next: min,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }

    /// Sleeps the current delay (minus up to a quarter, so that many clients spread out).
    pub(crate) async fn wait(&mut self) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let quarter = self.next / 4;
        let jitter = quarter.mul_f64(f64::from(nanos % 1000) / 1000.0);
        tokio::time::sleep(self.next - jitter).await;
        self.next = (self.next * 2).min(self.max);
    }
}

/// True when retrying cannot help: the broker refused who we are or what we asked for.
pub(crate) fn is_permanent(error: &lapin::Error) -> bool {
    let lapin::ErrorKind::ProtocolError(amqp) = error.kind() else {
        return false;
    };
    matches!(
        amqp.kind(),
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED | AMQPSoftError::PRECONDITIONFAILED)
            | AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED | AMQPHardError::INVALIDPATH)
    )
}

/// Opens a connection named `tollgate-jobs-{role}` (shown in the management UI).
pub(crate) async fn connect(config: &AmqpConfig, role: &str) -> Result<Connection, lapin::Error> {
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("tollgate-jobs-{role}").into());
    let timeout = Duration::from_millis(config.connect_timeout_ms);
    match tokio::time::timeout(timeout, Connection::connect(&config.url, properties)).await {
        Ok(result) => result,
        Err(_) => Err(lapin::Error::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no AMQP connection within {} ms", config.connect_timeout_ms),
        ))),
    }
}

/// Tracks one operation's retries: backoff between attempts, a deadline for all of them.
pub(crate) struct Retry {
    backoff: Backoff,
    deadline: Instant,
    retry_ms_max: u64,
}

impl Retry {
    pub(crate) fn new(config: &AmqpConfig) -> Retry {
        Retry {
            backoff: Backoff::new(config),
            deadline: Instant::now() + Duration::from_millis(config.retry_ms_max),
            retry_ms_max: config.retry_ms_max,
        }
    }

    /// After a failed attempt: `Err` to give up, `Ok` (after the backoff) to try again.
    pub(crate) async fn failed(
        &mut self,
        error: &lapin::Error,
        what: &str,
    ) -> Result<(), JobError> {
        if is_permanent(error) {
            return Err(JobError::Refused {
                message: format!("{what}: {error}"),
            });
        }
        if Instant::now() >= self.deadline {
            return Err(JobError::unavailable(format!(
                "{what}: still failing after {} ms: {error}",
                self.retry_ms_max
            )));
        }
        self.backoff.wait().await;
        Ok(())
    }
}

/// A transport-level error with `message`, for failures lapin does not report as errors.
pub(crate) fn io_error(message: &str) -> lapin::Error {
    lapin::Error::from(std::io::Error::other(message.to_owned()))
}
