//! The open-loop schedule of `sessions`: request `i` is due at `start + i / rate`, whatever
//! happened to earlier requests.

use std::time::Duration;

use crate::LoadError;
use crate::limits::{DURATION_S_MAX, RATE_PER_S_MAX, REQUESTS_MAX};

/// A fixed-interval schedule of `count` requests at `rate_per_s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    rate_per_s: u64,
    count: u64,
}

impl Schedule {
    /// A schedule of `rate_per_s` requests per second for `duration_s` seconds.
    pub fn new(rate_per_s: u64, duration_s: u64) -> Result<Schedule, LoadError> {
        if !(1..=RATE_PER_S_MAX).contains(&rate_per_s) {
            return Err(LoadError::Usage(format!(
                "rate {rate_per_s}/s is out of range: 1 to {RATE_PER_S_MAX}"
            )));
        }
        if !(1..=DURATION_S_MAX).contains(&duration_s) {
            return Err(LoadError::Usage(format!(
                "duration {duration_s} s is out of range: 1 to {DURATION_S_MAX}"
            )));
        }
        let count = rate_per_s.saturating_mul(duration_s);
        if count > REQUESTS_MAX {
            return Err(LoadError::Usage(format!(
                "{count} requests (rate × duration) is above the limit of {REQUESTS_MAX}"
            )));
        }
        Ok(Schedule { rate_per_s, count })
    }

    /// Number of requests in the schedule.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Requests per second.
    pub fn rate_per_s(&self) -> u64 {
        self.rate_per_s
    }

    /// When request `index` is due, from the start of the schedule. Computed from the index
    /// (not by adding intervals), so rounding never accumulates into drift.
    pub fn offset(&self, index: u64) -> Duration {
        let nanos = u128::from(index) * 1_000_000_000 / u128::from(self.rate_per_s);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// When the last request is due plus one interval: the nominal length of the run.
    pub fn span(&self) -> Duration {
        self.offset(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_evenly_spaced_without_drift() {
        let s = Schedule::new(3, 2).unwrap();
        assert_eq!(s.count(), 6);
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(1), Duration::from_nanos(333_333_333));
        assert_eq!(s.offset(2), Duration::from_nanos(666_666_666));
        assert_eq!(s.offset(3), Duration::from_secs(1));
        assert_eq!(s.span(), Duration::from_secs(2));
    }

    #[test]
    fn five_thousand_per_second_is_200_microseconds_apart() {
        let s = Schedule::new(5000, 20).unwrap();
        assert_eq!(s.count(), 100_000);
        assert_eq!(s.offset(1), Duration::from_micros(200));
        assert_eq!(s.offset(99_999), Duration::from_micros(19_999_800));
    }

    #[test]
    fn limits_are_enforced() {
        assert!(Schedule::new(0, 10).is_err());
        assert!(Schedule::new(10, 0).is_err());
        assert!(Schedule::new(RATE_PER_S_MAX + 1, 1).is_err());
        assert!(Schedule::new(RATE_PER_S_MAX, DURATION_S_MAX).is_err());
    }
}
