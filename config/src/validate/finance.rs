//! `[finance]`.

use super::Checker;
use crate::defaults::{self, limits};
use crate::raw::RawFinance;
use crate::sections::FinanceConfig;
use crate::sections::finance::parse_time_of_day;

pub(super) fn finance(c: &mut Checker, raw: RawFinance) -> FinanceConfig {
    let prefetch = c.int(
        "finance.prefetch",
        raw.prefetch,
        defaults::FINANCE_PREFETCH,
        limits::FINANCE_PREFETCH,
    );
    let attempts_max = c.int(
        "finance.attempts_max",
        raw.attempts_max,
        defaults::FINANCE_ATTEMPTS_MAX,
        limits::FINANCE_ATTEMPTS_MAX,
    );
    let notifications_path = c.optional_path(
        "finance.notifications_path",
        raw.notifications_path.as_ref(),
    );
    let notifications_interval_ms = c.int(
        "finance.notifications_interval_ms",
        raw.notifications_interval_ms,
        defaults::FINANCE_NOTIFICATIONS_INTERVAL_MS,
        limits::FINANCE_NOTIFICATIONS_INTERVAL_MS,
    );
    let collection_time = match raw.collection_time {
        Some(time) => match parse_time_of_day(&time) {
            Ok(_) => time,
            Err(message) => {
                c.problem("finance.collection_time", message);
                defaults::FINANCE_COLLECTION_TIME.to_string()
            }
        },
        None => defaults::FINANCE_COLLECTION_TIME.to_string(),
    };
    FinanceConfig {
        workers_enabled: raw
            .workers_enabled
            .unwrap_or(defaults::FINANCE_WORKERS_ENABLED),
        prefetch: u16::try_from(prefetch).unwrap_or(u16::MAX),
        attempts_max: u32::try_from(attempts_max).unwrap_or(u32::MAX),
        notifications_adapter: raw.notifications_adapter.unwrap_or_default(),
        notifications_path,
        notifications_interval_ms,
        collection_schedule_enabled: raw
            .collection_schedule_enabled
            .unwrap_or(defaults::FINANCE_COLLECTION_SCHEDULE_ENABLED),
        collection_time,
        republish_interval_ms: c.int(
            "finance.republish_interval_ms",
            raw.republish_interval_ms,
            defaults::FINANCE_REPUBLISH_INTERVAL_MS,
            limits::FINANCE_REPUBLISH_INTERVAL_MS,
        ),
    }
}
