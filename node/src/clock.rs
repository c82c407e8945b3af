//! The node's clock. Production nodes read the system clock; a node started with
//! `[node] test_clock_enabled = true` can have its time set through `PUT /v1/test/clock`, so that
//! end-to-end tests drive time-dependent processes (pay-by dates, dunning steps, the daily
//! collection run) without sleeping. Every component that asks "what time is it" (subscriber
//! actors, bill and collection workers, payments, periods) reads this one clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::{SignedDuration, Timestamp};

/// "No offset set": the system clock as is.
const UNSET: i64 = i64::MIN;

/// A clock: the system clock, shifted by an offset when a test sets the time.
#[derive(Clone)]
pub struct Clock {
    /// Nanoseconds added to the system clock (`UNSET` when not set).
    offset_ns: Arc<AtomicI64>,
    /// Whether the time may be set.
    settable: bool,
}

impl Clock {
    /// The system clock; settable only when `settable` (test clock enabled in the config).
    pub fn new(settable: bool) -> Clock {
        Clock {
            offset_ns: Arc::new(AtomicI64::new(UNSET)),
            settable,
        }
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        let system = Timestamp::now();
        match self.offset_ns.load(Ordering::SeqCst) {
            UNSET => system,
            offset => system
                .checked_add(SignedDuration::from_nanos(offset))
                .unwrap_or(system),
        }
    }

    /// Whether the time may be set.
    pub fn settable(&self) -> bool {
        self.settable
    }

    /// Makes "now" be `at` (time then moves on from there). Refused unless settable.
    pub fn set(&self, at: Timestamp) -> Result<(), &'static str> {
        if !self.settable {
            return Err("the test clock is not enabled on this node ([node] test_clock_enabled)");
        }
        let offset = at.duration_since(Timestamp::now()).as_nanos();
        let offset = i64::try_from(offset).map_err(|_| "time too far from now")?;
        self.offset_ns
            .store(offset.max(UNSET + 1), Ordering::SeqCst);
        Ok(())
    }

    /// A function reading this clock (for components that take `Fn() -> Timestamp`).
    pub fn source(&self) -> Arc<dyn Fn() -> Timestamp + Send + Sync> {
        let clock = self.clone();
        Arc::new(move || clock.now())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_system_clock_cannot_be_set() {
        let clock = Clock::new(false);
        assert!(clock.set(Timestamp::from_second(0).unwrap()).is_err());
        let drift = clock.now().duration_since(Timestamp::now()).abs();
        assert!(drift < SignedDuration::from_secs(1));
    }

    #[test]
    fn a_test_clock_moves_on_from_the_time_set() {
        let clock = Clock::new(true);
        let at: Timestamp = "2026-01-15T08:00:00Z".parse().unwrap();
        clock.set(at).unwrap();
        let now = clock.now();
        assert!(now >= at && now.duration_since(at) < SignedDuration::from_secs(1));
        let later: Timestamp = "2026-03-11T08:00:00Z".parse().unwrap();
        clock.set(later).unwrap();
        assert!((clock.source())() >= later);
    }
}
