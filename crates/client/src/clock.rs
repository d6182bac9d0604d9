//! Time, injected: logic asks a [`Clock`] instead of reading the system time ad hoc.

use std::time::SystemTime;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one place that reads the system time; everything else injects it.
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
