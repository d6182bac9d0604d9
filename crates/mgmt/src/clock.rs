//! Wall-clock time, injected so rate-limit arithmetic (`x-ratelimit-reset`, HTTP-date `Retry-After`) is testable.
//!
//! Only wall-clock readings go through [`Clock`]; token expiry uses `tokio::time::Instant`, which tests control
//! with paused time.

use std::fmt::Debug;
use std::sync::Mutex;

use time::OffsetDateTime;

/// A source of the current wall-clock time.
pub trait Clock: Debug + Send + Sync {
    /// The current time in UTC.
    fn now_utc(&self) -> OffsetDateTime;
}

/// The real clock. This is the only place in the crate that reads the system time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_utc(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to, for tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    /// A clock stopped at `now`.
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: OffsetDateTime) {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
    }

    /// Moves the time forward.
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now_utc(&self) -> OffsetDateTime {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(datetime!(2026-11-24 08:00:00 UTC));
        assert_eq!(clock.now_utc(), datetime!(2026-11-24 08:00:00 UTC));
        clock.advance(std::time::Duration::from_secs(90));
        assert_eq!(clock.now_utc(), datetime!(2026-11-24 08:01:30 UTC));
        clock.set(datetime!(2027-01-01 00:00:00 UTC));
        assert_eq!(clock.now_utc(), datetime!(2027-01-01 00:00:00 UTC));
    }
}
