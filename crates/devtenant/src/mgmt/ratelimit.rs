//! The Management API's token bucket and its `x-ratelimit-*` headers, on the tenant clock.
//!
//! Auth0 sends `x-ratelimit-limit` (bucket size), `x-ratelimit-remaining` and `x-ratelimit-reset` (UNIX epoch
//! seconds when the bucket is full again) on Management responses, and answers 429 with `retry-after` when the bucket
//! is empty. With `--mgmt-rate-limit` the bucket is enforced; without it the headers describe a bucket the size of
//! an Enterprise production tenant's (50 burst, 16/s) that never refuses a request.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use time::OffsetDateTime;

use crate::config::RateLimit;

/// `x-ratelimit-limit`.
pub const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `x-ratelimit-remaining`.
pub const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `x-ratelimit-reset`.
pub const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The bucket reported (never enforced) when no limit is configured.
pub const UNENFORCED_DEFAULT: RateLimit = RateLimit {
    count: 50,
    per: Duration::from_millis(3125),
};

/// A token bucket: `capacity` requests of burst, refilled continuously at `capacity / per`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    /// Seconds since the epoch of the last refill; `None` until the first request (the bucket starts full).
    last: Option<f64>,
    enforced: bool,
}

/// The outcome of one request against the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// `x-ratelimit-limit`: the bucket size.
    pub limit: u32,
    /// `x-ratelimit-remaining`: whole requests left after this one.
    pub remaining: u32,
    /// `x-ratelimit-reset`: UNIX epoch seconds when the bucket is full again.
    pub reset: i64,
    /// Whole seconds until the next request would be allowed (0 when one is available now).
    pub retry_after: u64,
}

fn seconds(at: OffsetDateTime) -> f64 {
    // Nanoseconds since the epoch fit an f64 with sub-microsecond precision for centuries.
    #[allow(clippy::cast_precision_loss)]
    let nanos = at.unix_timestamp_nanos() as f64;
    nanos / 1e9
}

impl TokenBucket {
    /// A bucket for `limit`; `enforced` says whether an empty bucket refuses requests.
    pub fn new(limit: RateLimit, enforced: bool) -> Self {
        let capacity = f64::from(limit.count.max(1));
        let per = limit.per.as_secs_f64().max(1e-3);
        Self {
            capacity,
            per_second: capacity / per,
            tokens: capacity,
            last: None,
            enforced,
        }
    }

    /// Whether an empty bucket refuses requests.
    pub fn enforced(&self) -> bool {
        self.enforced
    }

    fn refill(&mut self, now: f64) {
        if let Some(last) = self.last {
            let elapsed = (now - last).max(0.0);
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        }
        self.last = Some(now);
    }

    fn decision(&self, allowed: bool, now: f64) -> Decision {
        let missing = (self.capacity - self.tokens).max(0.0);
        let next = if self.tokens >= 1.0 {
            0.0
        } else {
            (1.0 - self.tokens) / self.per_second
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Decision {
            allowed,
            limit: self.capacity as u32,
            remaining: self.tokens.floor().max(0.0) as u32,
            reset: (now + missing / self.per_second).ceil() as i64,
            retry_after: if next <= 0.0 {
                0
            } else {
                (next.ceil() as u64).max(1)
            },
        }
    }

    /// Takes one token for a request at `now`.
    pub fn take(&mut self, now: OffsetDateTime) -> Decision {
        let now = seconds(now);
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.decision(true, now)
        } else {
            self.decision(!self.enforced, now)
        }
    }

    /// The bucket's state at `now` without taking a token.
    pub fn peek(&mut self, now: OffsetDateTime) -> Decision {
        let now = seconds(now);
        self.refill(now);
        self.decision(true, now)
    }
}

impl Decision {
    /// Sets the `x-ratelimit-*` headers (and `retry-after` when refused) on `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(X_RATELIMIT_LIMIT, HeaderValue::from(self.limit));
        headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(self.remaining));
        headers.insert(X_RATELIMIT_RESET, HeaderValue::from(self.reset));
        if !self.allowed {
            headers.insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(self.retry_after.max(1)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enforced_bucket_refuses_when_empty_and_refills_with_time() {
        let start = time::macros::datetime!(2026-01-01 00:00:00.250 UTC);
        let mut bucket = TokenBucket::new(
            RateLimit {
                count: 2,
                per: Duration::from_secs(1),
            },
            true,
        );
        let first = bucket.take(start);
        assert!(first.allowed);
        assert_eq!((first.limit, first.remaining), (2, 1));
        let second = bucket.take(start);
        assert!(second.allowed);
        assert_eq!(second.remaining, 0);
        let third = bucket.take(start);
        assert!(
            !third.allowed,
            "the third request in the same instant is refused"
        );
        assert_eq!(third.retry_after, 1);
        assert_eq!(
            third.reset,
            start.unix_timestamp() + 2,
            "full again 1 s later, rounded up to the next whole second"
        );
        let later = bucket.take(start + time::Duration::milliseconds(500));
        assert!(later.allowed, "half a second refills one request at 2/s");
        assert_eq!(later.remaining, 0);
    }

    #[test]
    fn an_unenforced_bucket_only_reports() {
        let now = time::macros::datetime!(2026-01-01 00:00 UTC);
        let mut bucket = TokenBucket::new(
            RateLimit {
                count: 1,
                per: Duration::from_secs(60),
            },
            false,
        );
        assert!(bucket.take(now).allowed);
        let refused_if_enforced = bucket.take(now);
        assert!(refused_if_enforced.allowed, "never refuses");
        assert_eq!(refused_if_enforced.remaining, 0);
    }
}
