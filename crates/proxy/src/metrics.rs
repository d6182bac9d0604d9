//! A small Prometheus registry: requests by route, method and status, a latency histogram per route, and the
//! upstream counters of the Management client, the token cache and the JWKS cache, rendered as text format 0.0.4.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use companion_mgmt::MetricsSnapshot;

use crate::auth::VerifierStats;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// One route's counters: requests by method and status (a handful, searched in place), and its latency.
#[derive(Debug, Default)]
struct RouteStats {
    requests: Vec<(String, u16, u64)>,
    latency: Histogram,
}

/// The counters by route. Recording a request looks its route up by `&str` and its method and status in place, so
/// it allocates only the first time a route, method and status are seen.
#[derive(Debug, Default)]
struct Inner {
    routes: BTreeMap<String, RouteStats>,
}

/// Request counters and latency histograms.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Everything rendered besides the request metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Upstream {
    /// Management client counters.
    pub mgmt: MetricsSnapshot,
    /// Token verifier counters.
    pub verifier: VerifierStats,
    /// List reads that joined an in-flight upstream call.
    pub joined_reads: u64,
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Records one answered request.
    pub fn observe(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !inner.routes.contains_key(route) {
            inner.routes.insert(route.to_owned(), RouteStats::default());
        }
        let Some(stats) = inner.routes.get_mut(route) else {
            return;
        };
        match stats
            .requests
            .iter_mut()
            .find(|(m, s, _)| *s == status && m == method)
        {
            Some((_, _, count)) => *count += 1,
            None => stats.requests.push((method.to_owned(), status, 1)),
        }
        let histogram = &mut stats.latency;
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in histogram.counts.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The Prometheus text exposition.
    pub fn render(&self, upstream: &Upstream) -> String {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        out.push_str("# HELP companion_proxy_requests_total Requests answered, by route, method and status.\n");
        out.push_str("# TYPE companion_proxy_requests_total counter\n");
        let mut requests: Vec<(&str, &str, u16, u64)> = inner
            .routes
            .iter()
            .flat_map(|(route, stats)| {
                stats.requests.iter().map(move |(method, status, count)| {
                    (route.as_str(), method.as_str(), *status, *count)
                })
            })
            .collect();
        requests.sort_unstable();
        for (route, method, status, count) in requests {
            let _ = writeln!(
                out,
                "companion_proxy_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                escape(route),
                escape(method)
            );
        }
        out.push_str(
            "# HELP companion_proxy_request_duration_seconds Request latency, by route.\n",
        );
        out.push_str("# TYPE companion_proxy_request_duration_seconds histogram\n");
        for (route, stats) in &inner.routes {
            let histogram = &stats.latency;
            let route = escape(route);
            for (count, bound) in histogram.counts.iter().zip(LATENCY_BUCKETS) {
                let _ = writeln!(
                    out,
                    "companion_proxy_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "companion_proxy_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "companion_proxy_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "companion_proxy_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count
            );
        }
        let counters: [(&str, &str, u64); 9] = [
            (
                "companion_proxy_upstream_calls_total",
                "Management API requests sent (each attempt).",
                upstream.mgmt.upstream_calls,
            ),
            (
                "companion_proxy_upstream_retries_total",
                "Management API retries after 5xx, timeouts or transport errors.",
                upstream.mgmt.retries,
            ),
            (
                "companion_proxy_m2m_token_fetches_total",
                "Client-credentials token requests sent.",
                upstream.mgmt.token_fetches,
            ),
            (
                "companion_proxy_upstream_rate_limited_total",
                "429 answers from Auth0.",
                upstream.mgmt.rate_limited,
            ),
            (
                "companion_proxy_jwks_fetches_total",
                "JWKS fetch attempts.",
                upstream.verifier.jwks_fetches,
            ),
            (
                "companion_proxy_jwks_fetch_failures_total",
                "Failed JWKS fetch attempts.",
                upstream.verifier.jwks_failures,
            ),
            (
                "companion_proxy_token_verifications_total",
                "Access tokens verified with RSA.",
                upstream.verifier.verifications,
            ),
            (
                "companion_proxy_token_cache_hits_total",
                "Access tokens served from the verified-token cache.",
                upstream.verifier.cache_hits,
            ),
            (
                "companion_proxy_list_joined_total",
                "List reads that joined an in-flight upstream call.",
                upstream.joined_reads,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.observe(
            "/v1/me/authenticators",
            "GET",
            200,
            Duration::from_millis(3),
        );
        metrics.observe(
            "/v1/me/authenticators",
            "GET",
            200,
            Duration::from_millis(300),
        );
        metrics.observe(
            "/v1/me/authenticators",
            "GET",
            401,
            Duration::from_micros(100),
        );
        let text = metrics.render(&Upstream::default());
        assert!(text.contains(
            "companion_proxy_requests_total{route=\"/v1/me/authenticators\",method=\"GET\",status=\"200\"} 2"
        ), "{text}");
        assert!(text.contains(
            "companion_proxy_request_duration_seconds_bucket{route=\"/v1/me/authenticators\",le=\"0.005\"} 2"
        ), "{text}");
        assert!(text.contains(
            "companion_proxy_request_duration_seconds_bucket{route=\"/v1/me/authenticators\",le=\"+Inf\"} 3"
        ), "{text}");
        assert!(text.contains("companion_proxy_m2m_token_fetches_total 0"));
    }
}
