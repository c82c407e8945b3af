//! `[jobs]`, `[amqp]` and `[billing]`.

use super::{Checker, claim_text};
use crate::defaults::{self, limits};
use crate::raw::{RawAmqp, RawBilling, RawJobs};
use crate::sections::{AmqpSettings, BillingConfig, JobsConfig};

pub(super) fn jobs(raw: RawJobs) -> JobsConfig {
    JobsConfig {
        backend: raw.backend.unwrap_or_default(),
    }
}

/// Checked whatever `jobs.backend` says, like `[kafka]` when it is not enabled: a mistake shows
/// when the file is checked, not when the backend is switched.
pub(super) fn amqp(c: &mut Checker, raw: RawAmqp) -> AmqpSettings {
    let url = raw.url.unwrap_or_else(|| defaults::AMQP_URL.to_string());
    url_problem(c, &url);
    let queue_prefix = raw
        .queue_prefix
        .unwrap_or_else(|| defaults::AMQP_QUEUE_PREFIX.to_string());
    if !limits::AMQP_QUEUE_PREFIX_LEN.contains(&queue_prefix.len()) {
        c.problem(
            "amqp.queue_prefix",
            format!(
                "must be {} to {} characters long (got {})",
                limits::AMQP_QUEUE_PREFIX_LEN.start(),
                limits::AMQP_QUEUE_PREFIX_LEN.end(),
                queue_prefix.len()
            ),
        );
    } else if !queue_prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        c.problem(
            "amqp.queue_prefix",
            format!("{queue_prefix:?} may only hold letters, digits, '.', '_' and '-'"),
        );
    }
    let delivery_limit = c.int(
        "amqp.delivery_limit",
        raw.delivery_limit,
        defaults::AMQP_DELIVERY_LIMIT,
        limits::AMQP_DELIVERY_LIMIT,
    );
    let backoff_min_key = "amqp.reconnect_backoff_ms_min";
    let backoff_max_key = "amqp.reconnect_backoff_ms_max";
    let before = c.problems.len();
    let reconnect_backoff_ms_min = c.int(
        backoff_min_key,
        raw.reconnect_backoff_ms_min,
        defaults::AMQP_RECONNECT_BACKOFF_MS_MIN,
        limits::AMQP_RECONNECT_BACKOFF_MS_MIN,
    );
    let reconnect_backoff_ms_max = c.int(
        backoff_max_key,
        raw.reconnect_backoff_ms_max,
        defaults::AMQP_RECONNECT_BACKOFF_MS_MAX,
        limits::AMQP_RECONNECT_BACKOFF_MS_MAX,
    );
    // When either was out of range a default stands in: comparing it says nothing.
    if c.problems.len() == before && reconnect_backoff_ms_min > reconnect_backoff_ms_max {
        c.cross_problem(
            backoff_min_key,
            backoff_max_key,
            format!(
                "{reconnect_backoff_ms_min} is above {backoff_max_key} \
                 ({reconnect_backoff_ms_max}): the first delay cannot be longer than the longest"
            ),
        );
    }
    let publish_window_len_max = c.int(
        "amqp.publish_window_len_max",
        raw.publish_window_len_max,
        defaults::AMQP_PUBLISH_WINDOW_LEN_MAX,
        limits::AMQP_PUBLISH_WINDOW_LEN_MAX,
    );
    AmqpSettings {
        url,
        queue_prefix,
        queue_type: raw.queue_type.unwrap_or_default(),
        delivery_limit: u32::try_from(delivery_limit).unwrap_or(u32::MAX),
        reconnect_backoff_ms_min,
        reconnect_backoff_ms_max,
        retry_ms_max: c.int(
            "amqp.retry_ms_max",
            raw.retry_ms_max,
            defaults::AMQP_RETRY_MS_MAX,
            limits::AMQP_RETRY_MS_MAX,
        ),
        connect_timeout_ms: c.int(
            "amqp.connect_timeout_ms",
            raw.connect_timeout_ms,
            defaults::AMQP_CONNECT_TIMEOUT_MS,
            limits::AMQP_CONNECT_TIMEOUT_MS,
        ),
        publish_window_len_max: usize::try_from(publish_window_len_max).unwrap_or(usize::MAX),
    }
}

/// Checks `amqp.url`. Messages never repeat the URL: it may hold a password.
fn url_problem(c: &mut Checker, url: &str) {
    let key = "amqp.url";
    if !limits::AMQP_URL_LEN.contains(&url.len()) {
        c.problem(
            key,
            format!(
                "must be {} to {} bytes long (got {})",
                limits::AMQP_URL_LEN.start(),
                limits::AMQP_URL_LEN.end(),
                url.len()
            ),
        );
        return;
    }
    let rest = url
        .strip_prefix("amqp://")
        .or_else(|| url.strip_prefix("amqps://"));
    match rest {
        None => c.problem(
            key,
            "must start with amqp:// or amqps://, e.g. \"amqp://user:password@host:5672/%2f\"",
        ),
        Some("") => c.problem(key, "names no broker after the scheme: write amqp://host"),
        Some(_) if url.chars().any(|ch| ch.is_whitespace() || ch.is_control()) => c.problem(
            key,
            "must not hold spaces or control characters (percent-encode them)",
        ),
        Some(_) => {}
    }
}

pub(super) fn billing(c: &mut Checker, raw: RawBilling) -> BillingConfig {
    let prefetch = c.int(
        "billing.prefetch",
        raw.prefetch,
        defaults::BILLING_PREFETCH,
        limits::BILLING_PREFETCH,
    );
    let timezone = raw
        .timezone
        .unwrap_or_else(|| defaults::BILLING_TIMEZONE.to_string());
    let before = c.problems.len();
    claim_text(
        c,
        "billing.timezone",
        &timezone,
        limits::BILLING_TIMEZONE_LEN,
    );
    if c.problems.len() == before
        && let Err(e) = jiff::tz::TimeZone::get(&timezone)
    {
        c.problem(
            "billing.timezone",
            format!(
                "{timezone:?} is not a known IANA time zone, e.g. \"UTC\" or \"Europe/Berlin\" \
                 ({e})"
            ),
        );
    }
    let series = raw
        .series
        .unwrap_or_else(|| defaults::BILLING_SERIES.to_string());
    if !limits::BILLING_SERIES_LEN.contains(&series.len()) {
        c.problem(
            "billing.series",
            format!(
                "must be {} to {} characters long (got {})",
                limits::BILLING_SERIES_LEN.start(),
                limits::BILLING_SERIES_LEN.end(),
                series.len()
            ),
        );
    } else if !series
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    {
        c.problem(
            "billing.series",
            format!("{series:?} may only hold letters, digits, '_' and '-'"),
        );
    }
    let attempts_max = c.int(
        "billing.attempts_max",
        raw.attempts_max,
        defaults::BILLING_ATTEMPTS_MAX,
        limits::BILLING_ATTEMPTS_MAX,
    );
    BillingConfig {
        workers_enabled: raw
            .workers_enabled
            .unwrap_or(defaults::BILLING_WORKERS_ENABLED),
        prefetch: u16::try_from(prefetch).unwrap_or(u16::MAX),
        timezone,
        series,
        attempts_max: u32::try_from(attempts_max).unwrap_or(u32::MAX),
        republish_interval_ms: c.int(
            "billing.republish_interval_ms",
            raw.republish_interval_ms,
            defaults::BILLING_REPUBLISH_INTERVAL_MS,
            limits::BILLING_REPUBLISH_INTERVAL_MS,
        ),
    }
}
