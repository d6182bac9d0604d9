//! Counters for the proxy's `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by a client and its token cache.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Requests sent to the Management API (each attempt counts).
    pub(crate) upstream_calls: AtomicU64,
    /// Requests sent to the token endpoint (each attempt counts).
    pub(crate) token_fetches: AtomicU64,
    /// 429 answers from the Management API or the token endpoint.
    pub(crate) rate_limited: AtomicU64,
    /// Retries after a 5xx, timeout or transport error.
    pub(crate) retries: AtomicU64,
}

/// A point-in-time copy of the client's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Requests sent to the Management API (each attempt counts).
    pub upstream_calls: u64,
    /// Requests sent to the token endpoint (each attempt counts).
    pub token_fetches: u64,
    /// 429 answers from the Management API or the token endpoint.
    pub rate_limited: u64,
    /// Retries of Management API calls after a 5xx, timeout or transport error.
    pub retries: u64,
}

impl Metrics {
    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            upstream_calls: self.upstream_calls.load(Ordering::Relaxed),
            token_fetches: self.token_fetches.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}
