//! Retry policy: rate-limit waits (`Retry-After`, `x-ratelimit-reset`) within a budget, and exponential backoff
//! with jitter for transient failures of idempotent calls.
//!
//! Modelled on go-auth0's retry logic: a 429 waits for the time the server names, padded by 25% and clamped to
//! `[min, max]`; other transient failures back off exponentially. All functions here are pure.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// The `x-ratelimit-reset` header: UNIX epoch seconds at which the bucket refills.
pub const X_RATELIMIT_RESET: &str = "x-ratelimit-reset";

/// How the client retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts for an idempotent call failing with 5xx, a timeout or a transport error (1 = no retry).
    pub max_attempts: u32,
    /// First backoff delay; doubles per attempt.
    pub backoff_base: Duration,
    /// Upper bound of one backoff delay.
    pub backoff_max: Duration,
    /// Total time one call may spend waiting for rate limits before it returns `Busy`.
    pub rate_limit_budget: Duration,
    /// Lower bound of one rate-limit wait (also used when a 429 names no time).
    pub rate_limit_min_wait: Duration,
    /// Upper bound of one rate-limit wait.
    pub rate_limit_max_wait: Duration,
    /// Padding added to the server's wait, in percent (go-auth0 uses 25).
    pub rate_limit_padding_percent: u32,
    /// Hard cap on 429 retries of one call, whatever the budget.
    pub max_rate_limit_retries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            rate_limit_budget: Duration::from_secs(3),
            rate_limit_min_wait: Duration::from_secs(1),
            rate_limit_max_wait: Duration::from_secs(10),
            rate_limit_padding_percent: 25,
            max_rate_limit_retries: 5,
        }
    }
}

impl RetryPolicy {
    /// No retries and no waiting at all: every failure is returned at once.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            rate_limit_budget: Duration::ZERO,
            max_rate_limit_retries: 0,
            ..Self::default()
        }
    }

    /// The backoff before retry number `retry` (0 for the first retry), with "equal jitter": half of the exponential
    /// delay is fixed, the other half is scaled by `jitter` (a number in `[0, 1)`).
    pub fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(20));
        let full = self
            .backoff_base
            .saturating_mul(factor)
            .min(self.backoff_max);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// The time to sleep after a 429 whose headers asked for `server_delay` (if any): padded, at least
    /// `rate_limit_min_wait`. `None` when that exceeds `rate_limit_max_wait`: waiting less than the server asked
    /// would only earn another 429, so the caller gives up at once.
    pub fn rate_limit_wait(&self, server_delay: Option<Duration>) -> Option<Duration> {
        let padded = match server_delay {
            Some(delay) => delay.saturating_add(delay * self.rate_limit_padding_percent / 100),
            None => self.rate_limit_min_wait,
        };
        let wait = padded.max(self.rate_limit_min_wait);
        (wait <= self.rate_limit_max_wait).then_some(wait)
    }
}

/// IMF-fixdate, the HTTP-date form servers send: `Sun, 06 Nov 1994 08:49:37 GMT`.
const IMF_FIXDATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (a date in the past means "now").
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let date = time::PrimitiveDateTime::parse(value, IMF_FIXDATE)
        .ok()?
        .assume_utc();
    Some(until(date, now))
}

/// Parses `x-ratelimit-reset` (UNIX epoch seconds) into a delay from `now` (a reset in the past means "now").
pub fn parse_ratelimit_reset(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let epoch = value.trim().parse::<i64>().ok()?;
    let reset = OffsetDateTime::from_unix_timestamp(epoch).ok()?;
    Some(until(reset, now))
}

/// The delay a 429 response asks for: `Retry-After` if present and valid, else `x-ratelimit-reset` − now.
pub fn server_delay(headers: &HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    header(RETRY_AFTER.as_str())
        .and_then(|v| parse_retry_after(v, now))
        .or_else(|| header(X_RATELIMIT_RESET).and_then(|v| parse_ratelimit_reset(v, now)))
}

/// Whole seconds to tell a caller to wait, rounded up, at least one.
pub fn whole_seconds_up(delay: Duration) -> Duration {
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

fn until(then: OffsetDateTime, now: OffsetDateTime) -> Duration {
    let delta = then - now;
    if delta.is_negative() {
        Duration::ZERO
    } else {
        delta.unsigned_abs()
    }
}

/// The rate-limit waiting allowance of one call.
#[derive(Debug, Clone)]
pub(crate) struct WaitBudget {
    remaining: Duration,
    retries_left: u32,
}

impl WaitBudget {
    /// A fresh allowance under `policy`.
    pub(crate) fn new(policy: &RetryPolicy) -> Self {
        Self {
            remaining: policy.rate_limit_budget,
            retries_left: policy.max_rate_limit_retries,
        }
    }

    /// Decides what to do after a 429 asking for `server_delay`: `Ok(wait)` to sleep `wait` and retry (the budget
    /// is charged), or `Err(retry_after)` to give up and tell the caller to come back after `retry_after` (the
    /// server's delay in whole seconds, at least one).
    pub(crate) fn admit(
        &mut self,
        policy: &RetryPolicy,
        server_delay: Option<Duration>,
    ) -> Result<Duration, Duration> {
        match policy.rate_limit_wait(server_delay) {
            Some(wait) if self.try_spend(wait) => Ok(wait),
            _ => Err(whole_seconds_up(
                server_delay.unwrap_or(policy.rate_limit_min_wait),
            )),
        }
    }

    /// Spends `wait` if the budget allows it; `false` means the caller must give up with `Busy`.
    pub(crate) fn try_spend(&mut self, wait: Duration) -> bool {
        if self.retries_left == 0 || wait > self.remaining {
            return false;
        }
        self.retries_left -= 1;
        self.remaining -= wait;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2015-10-21 07:28:00 UTC);

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("0", NOW), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("2", NOW), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 120 ", NOW),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("-1", NOW), None);
        assert_eq!(parse_retry_after("1.5", NOW), None);
        assert_eq!(parse_retry_after("", NOW), None);
        assert_eq!(parse_retry_after("soon", NOW), None);
    }

    #[test]
    fn retry_after_http_date() {
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:03 GMT", NOW),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", NOW),
            Some(Duration::ZERO),
            "a date in the past means retry now"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:03 +0000", NOW),
            None
        );
    }

    #[test]
    fn ratelimit_reset_epoch() {
        let now = NOW.unix_timestamp();
        assert_eq!(
            parse_ratelimit_reset(&(now + 2).to_string(), NOW),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_ratelimit_reset(&(now - 5).to_string(), NOW),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_ratelimit_reset("tomorrow", NOW), None);
    }

    #[test]
    fn retry_after_wins_over_reset() {
        let mut headers = HeaderMap::new();
        let reset = (NOW.unix_timestamp() + 9).to_string();
        headers.insert(X_RATELIMIT_RESET, HeaderValue::from_str(&reset).unwrap());
        assert_eq!(server_delay(&headers, NOW), Some(Duration::from_secs(9)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        assert_eq!(server_delay(&headers, NOW), Some(Duration::from_secs(1)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("garbage"));
        assert_eq!(
            server_delay(&headers, NOW),
            Some(Duration::from_secs(9)),
            "an unparsable Retry-After falls back to the reset header"
        );
        assert_eq!(server_delay(&HeaderMap::new(), NOW), None);
    }

    #[test]
    fn rate_limit_wait_pads_and_bounds() {
        let policy = RetryPolicy::default();
        let wait = |secs: u64| policy.rate_limit_wait(Some(Duration::from_secs(secs)));
        assert_eq!(wait(2), Some(Duration::from_millis(2500)), "padded by 25%");
        assert_eq!(
            wait(0),
            Some(Duration::from_secs(1)),
            "at least the minimum"
        );
        assert_eq!(policy.rate_limit_wait(None), Some(Duration::from_secs(1)));
        assert_eq!(
            wait(8),
            Some(Duration::from_secs(10)),
            "exactly the maximum"
        );
        assert_eq!(
            wait(9),
            None,
            "beyond the maximum: give up rather than retry early"
        );
        assert_eq!(wait(60), None);
    }

    #[test]
    fn admit_sleeps_within_budget_and_reports_busy_beyond() {
        let policy = RetryPolicy::default();
        let mut budget = WaitBudget::new(&policy);
        assert_eq!(
            budget.admit(&policy, Some(Duration::from_secs(1))),
            Ok(Duration::from_millis(1250))
        );
        assert_eq!(
            budget.admit(&policy, Some(Duration::from_secs(1))),
            Ok(Duration::from_millis(1250))
        );
        assert_eq!(
            budget.admit(&policy, Some(Duration::from_secs(1))),
            Err(Duration::from_secs(1)),
            "0.5 s of budget left: busy, retry after the server's 1 s"
        );
        let mut budget = WaitBudget::new(&policy);
        assert_eq!(
            budget.admit(&policy, Some(Duration::from_secs(30))),
            Err(Duration::from_secs(30)),
            "the server's own delay is reported, not the padded one"
        );
        assert_eq!(
            budget.admit(&policy, Some(Duration::from_millis(2500))),
            Err(Duration::from_secs(3)),
            "rounded up to whole seconds; a 30 s refusal spent nothing, but 3.125 s exceeds 3 s"
        );
        assert_eq!(budget.admit(&policy, None), Ok(Duration::from_secs(1)));
        let mut none = WaitBudget::new(&RetryPolicy::none());
        assert_eq!(none.admit(&policy, None), Err(Duration::from_secs(1)));
    }

    #[test]
    fn backoff_grows_and_stays_within_bounds() {
        let policy = RetryPolicy::default();
        for retry in 0..30 {
            let expected = policy
                .backoff_base
                .saturating_mul(2u32.saturating_pow(retry.min(20)))
                .min(policy.backoff_max);
            let low = policy.backoff(retry, 0.0);
            let high = policy.backoff(retry, 0.999_999);
            assert_eq!(
                low,
                expected / 2,
                "retry {retry}: no jitter is half the delay"
            );
            assert!(
                high <= expected,
                "retry {retry}: {high:?} exceeds {expected:?}"
            );
            assert!(high >= low);
            assert!(high <= policy.backoff_max);
        }
        assert_eq!(policy.backoff(0, 0.0), Duration::from_millis(50));
        assert_eq!(policy.backoff(1, 0.0), Duration::from_millis(100));
        assert_eq!(policy.backoff(3, 1.0), Duration::from_millis(800));
        assert_eq!(policy.backoff(99, 1.0), Duration::from_secs(2));
        assert_eq!(
            policy.backoff(0, 7.0),
            Duration::from_millis(100),
            "jitter is clamped"
        );
    }

    #[test]
    fn budget_allows_waits_until_spent() {
        let policy = RetryPolicy::default();
        let mut budget = WaitBudget::new(&policy);
        assert!(budget.try_spend(Duration::from_secs(1)));
        assert!(budget.try_spend(Duration::from_millis(1500)));
        assert!(!budget.try_spend(Duration::from_secs(1)), "only 0.5 s left");
        assert!(budget.try_spend(Duration::from_millis(500)));
        assert!(!budget.try_spend(Duration::from_millis(1)));
    }

    #[test]
    fn budget_caps_the_number_of_retries() {
        let policy = RetryPolicy {
            max_rate_limit_retries: 2,
            ..RetryPolicy::default()
        };
        let mut budget = WaitBudget::new(&policy);
        assert!(budget.try_spend(Duration::ZERO));
        assert!(budget.try_spend(Duration::ZERO));
        assert!(!budget.try_spend(Duration::ZERO));
        let mut none = WaitBudget::new(&RetryPolicy::none());
        assert!(!none.try_spend(Duration::ZERO));
    }

    #[test]
    fn whole_seconds_round_up() {
        assert_eq!(whole_seconds_up(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(
            whole_seconds_up(Duration::from_millis(2001)),
            Duration::from_secs(3)
        );
        assert_eq!(
            whole_seconds_up(Duration::from_secs(4)),
            Duration::from_secs(4)
        );
    }
}
