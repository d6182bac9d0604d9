//! The machine-to-machine token: one client-credentials request, reused until shortly before it expires, refreshed
//! by a single flight, with transient and permanent failures told apart.
//!
//! Expiry is measured with `tokio::time::Instant`, so tests drive it with paused time.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use companion_protocol::auth0::{OAuthErrorBody, TokenResponse};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::error::{FailureKind, TokenFailureReason, TokenRequestError};
use crate::metrics::Metrics;
use crate::retry::{RetryPolicy, WaitBudget, server_delay};

/// Longest lifetime we believe: an `expires_in` beyond it is treated as this (it keeps `Instant` arithmetic safe).
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// After a transient refresh failure while the old token is still valid, wait at most this long before trying again.
const STALE_RETRY: Duration = Duration::from_secs(5);

/// A Management API access token. `Debug` prints `[redacted]`; the value is reachable only through
/// [`AccessToken::secret`].
#[derive(Clone)]
pub struct AccessToken {
    // Shared: every call clones the cached token, and a JWT is about a kilobyte.
    secret: Arc<SecretString>,
    generation: u64,
    /// `Bearer <token>` as a sensitive header value, built once per token rather than once per call (`None` if the
    /// token holds bytes a header cannot).
    authorization: Option<reqwest::header::HeaderValue>,
}

impl AccessToken {
    fn new(secret: SecretString, generation: u64) -> Self {
        let authorization =
            reqwest::header::HeaderValue::try_from(format!("Bearer {}", secret.expose_secret()))
                .ok()
                .map(|mut value| {
                    value.set_sensitive(true);
                    value
                });
        Self {
            secret: Arc::new(secret),
            generation,
            authorization,
        }
    }

    /// The `Authorization` header value for this token, marked sensitive.
    pub(crate) fn authorization(&self) -> Option<&reqwest::header::HeaderValue> {
        self.authorization.as_ref()
    }

    /// The bearer token.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// Which fetch produced this token (1 for the first), so a rejected token is invalidated only once.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[redacted]")
            .field("generation", &self.generation)
            .finish()
    }
}

/// What one successful fetch returns.
pub(crate) struct Fetched {
    pub(crate) token: SecretString,
    pub(crate) lifetime: Duration,
}

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    refresh_at: Instant,
    expires_at: Instant,
}

type Flight = Arc<OnceCell<Result<AccessToken, TokenRequestError>>>;

#[derive(Default)]
struct SlotState {
    current: Option<Cached>,
    flight: Option<Flight>,
    generation: u64,
}

/// The cached token and the single flight that refreshes it, independent of how a token is fetched.
pub(crate) struct TokenSlot {
    slack: Duration,
    state: Mutex<SlotState>,
}

impl TokenSlot {
    /// A slot that refreshes `slack` before expiry (capped at a tenth of each token's lifetime).
    pub(crate) fn new(slack: Duration) -> Self {
        Self {
            slack,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached token if it is fresh; otherwise joins the flight in progress, or starts one with `fetch`.
    /// Inside the refresh slack only the caller that starts the refresh waits for it: while it runs, others keep
    /// using the still-valid token.
    ///
    /// Every caller waiting on one flight gets that flight's result, success or failure, so N concurrent callers
    /// cause one fetch. If the caller running the fetch is cancelled, a waiting caller takes the fetch over.
    pub(crate) async fn get_with<F, Fut>(&self, fetch: F) -> Result<AccessToken, TokenRequestError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched, TokenRequestError>>,
    {
        let flight = {
            let mut state = self.lock();
            if let Some(cached) = &state.current {
                let now = Instant::now();
                // Fresh, or inside the slack while another caller already refreshes it: it still works.
                if now < cached.refresh_at || (now < cached.expires_at && state.flight.is_some()) {
                    return Ok(cached.token.clone());
                }
            }
            state
                .flight
                .get_or_insert_with(|| Arc::new(OnceCell::new()))
                .clone()
        };
        let this_flight = &flight;
        flight
            .get_or_init(|| async move {
                let started = Instant::now();
                let result = fetch().await;
                self.complete(this_flight, started, result)
            })
            .await
            .clone()
    }

    fn complete(
        &self,
        flight: &Flight,
        started: Instant,
        result: Result<Fetched, TokenRequestError>,
    ) -> Result<AccessToken, TokenRequestError> {
        let mut state = self.lock();
        if state
            .flight
            .as_ref()
            .is_some_and(|f| Arc::ptr_eq(f, flight))
        {
            state.flight = None;
        }
        match result {
            Ok(fetched) => {
                state.generation += 1;
                let lifetime = fetched.lifetime.min(MAX_LIFETIME);
                let slack = self.slack.min(lifetime / 10);
                let expires_at = started + lifetime;
                let token = AccessToken::new(fetched.token, state.generation);
                state.current = Some(Cached {
                    token: token.clone(),
                    refresh_at: expires_at - slack,
                    expires_at,
                });
                Ok(token)
            }
            Err(error) => {
                let now = Instant::now();
                if error.is_transient()
                    && let Some(cached) = &mut state.current
                    && now < cached.expires_at
                {
                    // The old token still works: keep serving it and try again a little later.
                    let remaining = cached.expires_at - now;
                    cached.refresh_at = now + STALE_RETRY.min(remaining / 2);
                    tracing::warn!(%error, "management api token refresh failed; using the current token");
                    return Ok(cached.token.clone());
                }
                Err(error)
            }
        }
    }

    /// Forgets `token` if it is still the cached one (after the Management API rejected it).
    pub(crate) fn invalidate(&self, token: &AccessToken) {
        let mut state = self.lock();
        if state
            .current
            .as_ref()
            .is_some_and(|c| c.token.generation == token.generation)
        {
            state.current = None;
        }
    }
}

/// The client-credentials request: endpoint, credentials and retry policy.
pub(crate) struct TokenEndpoint {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
    pub(crate) audience: String,
    pub(crate) policy: RetryPolicy,
    pub(crate) clock: Arc<dyn Clock>,
}

impl TokenEndpoint {
    /// One client-credentials exchange, retrying transient failures (5xx, network, timeouts) with backoff and
    /// honouring 429 within the wait budget. Permanent failures return at once.
    async fn fetch(&self, metrics: &Metrics) -> Result<Fetched, TokenRequestError> {
        let mut budget = WaitBudget::new(&self.policy);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let error = match self.attempt(metrics).await {
                Ok(fetched) => return Ok(fetched),
                Err(Attempt::Failed(error)) => error,
                Err(Attempt::RateLimited {
                    server_delay,
                    error,
                }) => match budget.admit(&self.policy, server_delay) {
                    Ok(wait) => {
                        tracing::debug!(?wait, "token endpoint rate limited; waiting");
                        tokio::time::sleep(wait).await;
                        attempt -= 1;
                        continue;
                    }
                    Err(retry_after) => return Err(error.with_retry_after(retry_after)),
                },
            };
            if !error.is_transient() || attempt >= self.policy.max_attempts {
                return Err(error);
            }
            let delay = self
                .policy
                .backoff(attempt - 1, rand::thread_rng().r#gen::<f64>());
            tracing::debug!(%error, ?delay, "token request failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, metrics: &Metrics) -> Result<Fetched, Attempt> {
        metrics.token_fetches.fetch_add(1, Ordering::Relaxed);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("audience", self.audience.as_str()),
        ];
        let response = self
            .http
            .post(&self.url)
            .form(&form)
            .send()
            .await
            .map_err(|e| Attempt::Failed(transport_error(e)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| Attempt::Failed(transport_error(e)))?;
        let oauth = || serde_json::from_slice::<OAuthErrorBody>(&body).ok();
        if status.is_success() {
            let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                Attempt::Failed(
                    TokenRequestError::new(FailureKind::Permanent, TokenFailureReason::Decode)
                        .with_source(e),
                )
            })?;
            if parsed.access_token.is_empty() || !parsed.token_type.eq_ignore_ascii_case("bearer") {
                return Err(Attempt::Failed(TokenRequestError::new(
                    FailureKind::Permanent,
                    TokenFailureReason::Decode,
                )));
            }
            return Ok(Fetched {
                token: SecretString::from(parsed.access_token),
                lifetime: Duration::from_secs(parsed.expires_in),
            });
        }
        if status.as_u16() == 429 {
            metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Err(Attempt::RateLimited {
                server_delay: server_delay(&headers, self.clock.now_utc()),
                error: TokenRequestError::new(
                    FailureKind::Transient,
                    TokenFailureReason::RateLimited,
                )
                .with_status(429, oauth()),
            });
        }
        let kind = if status.is_server_error() || status.as_u16() == 408 {
            FailureKind::Transient
        } else {
            FailureKind::Permanent
        };
        Err(Attempt::Failed(
            TokenRequestError::new(kind, TokenFailureReason::Status)
                .with_status(status.as_u16(), oauth()),
        ))
    }
}

enum Attempt {
    Failed(TokenRequestError),
    RateLimited {
        server_delay: Option<Duration>,
        error: TokenRequestError,
    },
}

fn transport_error(error: reqwest::Error) -> TokenRequestError {
    let reason = if error.is_timeout() {
        TokenFailureReason::Timeout
    } else {
        TokenFailureReason::Transport
    };
    // reqwest errors carry the URL, never the form body, so they hold no secret.
    TokenRequestError::new(FailureKind::Transient, reason).with_source(error.without_url())
}

/// The cached Management API token of one client.
pub struct TokenCache {
    slot: TokenSlot,
    endpoint: TokenEndpoint,
    metrics: Arc<Metrics>,
}

impl TokenCache {
    pub(crate) fn new(endpoint: TokenEndpoint, slack: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            slot: TokenSlot::new(slack),
            endpoint,
            metrics,
        }
    }

    /// A valid token: the cached one, or a fresh one from a single-flight client-credentials request.
    ///
    /// # Errors
    /// [`TokenRequestError`], transient (network, timeout, 5xx, 429) or permanent (rejected credentials, malformed
    /// response). A transient failure while the cached token has not yet expired returns the cached token instead.
    pub async fn access_token(&self) -> Result<AccessToken, TokenRequestError> {
        self.slot
            .get_with(|| self.endpoint.fetch(&self.metrics))
            .await
    }

    /// Drops `token` from the cache if it is still the cached one, so the next call fetches a new one.
    pub fn invalidate(&self, token: &AccessToken) {
        self.slot.invalidate(token);
    }

    /// Requests sent to the token endpoint so far (each attempt counts).
    pub fn token_fetches(&self) -> u64 {
        self.metrics.token_fetches.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("endpoint", &self.endpoint.url)
            .field("client_id", &self.endpoint.client_id)
            .field("client_secret", &"[redacted]")
            .field("audience", &self.endpoint.audience)
            .field("token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn ok(secret: &str, lifetime: u64) -> Result<Fetched, TokenRequestError> {
        Ok(Fetched {
            token: SecretString::from(secret.to_owned()),
            lifetime: Duration::from_secs(lifetime),
        })
    }

    fn transient() -> TokenRequestError {
        TokenRequestError::new(FailureKind::Transient, TokenFailureReason::Transport)
    }

    fn permanent() -> TokenRequestError {
        TokenRequestError::new(FailureKind::Permanent, TokenFailureReason::Status)
            .with_status(401, None)
    }

    #[tokio::test(start_paused = true)]
    async fn token_is_reused_until_the_slack_before_expiry() {
        let slot = TokenSlot::new(Duration::from_secs(60));
        let fetches = AtomicU64::new(0);
        let fetch = || async {
            let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
            ok(&format!("token-{n}"), 3600)
        };
        let first = slot.get_with(fetch).await.unwrap();
        assert_eq!(first.secret().expose_secret(), "token-1");
        tokio::time::advance(Duration::from_secs(3600 - 61)).await;
        let again = slot.get_with(fetch).await.unwrap();
        assert_eq!(
            again.generation(),
            1,
            "still inside the lifetime minus slack"
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        let refreshed = slot.get_with(fetch).await.unwrap();
        assert_eq!(
            refreshed.secret().expose_secret(),
            "token-2",
            "inside the slack: refreshed"
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn slack_is_capped_at_a_tenth_of_a_short_lifetime() {
        let slot = TokenSlot::new(Duration::from_secs(60));
        let fetches = AtomicU64::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            ok("short", 100)
        };
        slot.get_with(fetch).await.unwrap();
        tokio::time::advance(Duration::from_secs(89)).await;
        slot.get_with(fetch).await.unwrap();
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "a 100 s token is used for 90 s"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        slot.get_with(fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch() {
        let slot = Arc::new(TokenSlot::new(Duration::from_secs(60)));
        let fetches = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let slot = slot.clone();
            let fetches = fetches.clone();
            tasks.push(tokio::spawn(async move {
                slot.get_with(|| async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    ok("shared", 3600)
                })
                .await
            }));
        }
        for task in tasks {
            let token = task.await.unwrap().unwrap();
            assert_eq!(token.generation(), 1);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "50 callers, one fetch");
    }

    #[tokio::test(start_paused = true)]
    async fn inside_the_slack_only_the_refreshing_caller_waits() {
        let slot = Arc::new(TokenSlot::new(Duration::from_secs(60)));
        slot.get_with(|| async { ok("old", 3600) }).await.unwrap();
        tokio::time::advance(Duration::from_secs(3600 - 30)).await;
        let refresher = {
            let slot = slot.clone();
            tokio::spawn(async move {
                slot.get_with(|| async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    ok("new", 3600)
                })
                .await
            })
        };
        tokio::task::yield_now().await;
        let during = slot
            .get_with(|| async { panic!("a second refresh must not start") })
            .await
            .unwrap();
        assert_eq!(
            during.secret().expose_secret(),
            "old",
            "served without waiting"
        );
        let refreshed = refresher.await.unwrap().unwrap();
        assert_eq!(refreshed.secret().expose_secret(), "new");
        let after = slot
            .get_with(|| async { panic!("the new token is fresh") })
            .await
            .unwrap();
        assert_eq!(after.secret().expose_secret(), "new");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_failure() {
        let slot = Arc::new(TokenSlot::new(Duration::from_secs(60)));
        let fetches = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let slot = slot.clone();
            let fetches = fetches.clone();
            tasks.push(tokio::spawn(async move {
                slot.get_with(|| async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err(permanent())
                })
                .await
            }));
        }
        for task in tasks {
            let error = task.await.unwrap().unwrap_err();
            assert_eq!(error.kind(), FailureKind::Permanent);
            assert_eq!(error.status(), Some(401));
        }
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "a permanent failure is not retried per caller"
        );
        // The failure is not cached: the next caller tries again (once).
        let token = slot.get_with(|| async { ok("later", 3600) }).await.unwrap();
        assert_eq!(token.generation(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_fetch_is_taken_over_by_a_waiter() {
        let slot = Arc::new(TokenSlot::new(Duration::from_secs(60)));
        let first = {
            let slot = slot.clone();
            tokio::spawn(async move {
                slot.get_with(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    ok("never", 3600)
                })
                .await
            })
        };
        tokio::task::yield_now().await;
        let second = {
            let slot = slot.clone();
            tokio::spawn(async move { slot.get_with(|| async { ok("second", 3600) }).await })
        };
        tokio::task::yield_now().await;
        first.abort();
        let token = second.await.unwrap().unwrap();
        assert_eq!(token.secret().expose_secret(), "second");
    }

    #[tokio::test(start_paused = true)]
    async fn transient_refresh_failure_keeps_serving_a_valid_token() {
        let slot = TokenSlot::new(Duration::from_secs(60));
        slot.get_with(|| async { ok("old", 600) }).await.unwrap();
        tokio::time::advance(Duration::from_secs(590)).await;
        let token = slot.get_with(|| async { Err(transient()) }).await.unwrap();
        assert_eq!(token.secret().expose_secret(), "old");
        // Within the short retry pause the old token is served without a fetch.
        let token = slot
            .get_with(|| async { panic!("must not fetch during the retry pause") })
            .await
            .unwrap();
        assert_eq!(token.secret().expose_secret(), "old");
        tokio::time::advance(Duration::from_secs(5)).await;
        let token = slot.get_with(|| async { ok("new", 600) }).await.unwrap();
        assert_eq!(token.secret().expose_secret(), "new");
        // Once expired, a transient failure is an error.
        tokio::time::advance(Duration::from_secs(601)).await;
        let error = slot
            .get_with(|| async { Err(transient()) })
            .await
            .unwrap_err();
        assert!(error.is_transient());
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_refresh_failure_is_returned_even_with_a_valid_token() {
        let slot = TokenSlot::new(Duration::from_secs(60));
        slot.get_with(|| async { ok("old", 600) }).await.unwrap();
        tokio::time::advance(Duration::from_secs(590)).await;
        let error = slot
            .get_with(|| async { Err(permanent()) })
            .await
            .unwrap_err();
        assert!(!error.is_transient());
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_forgets_only_the_rejected_generation() {
        let slot = TokenSlot::new(Duration::from_secs(60));
        let first = slot.get_with(|| async { ok("one", 3600) }).await.unwrap();
        slot.invalidate(&first);
        let second = slot.get_with(|| async { ok("two", 3600) }).await.unwrap();
        assert_eq!(second.generation(), 2);
        slot.invalidate(&first);
        let still = slot
            .get_with(|| async { panic!("a stale invalidation must not drop the new token") })
            .await
            .unwrap();
        assert_eq!(still.generation(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn absurd_lifetimes_do_not_overflow() {
        let slot = TokenSlot::new(Duration::from_secs(60));
        let token = slot
            .get_with(|| async { ok("long", u64::MAX) })
            .await
            .unwrap();
        assert_eq!(token.generation(), 1);
        let zero = TokenSlot::new(Duration::from_secs(60));
        zero.get_with(|| async { ok("zero", 0) }).await.unwrap();
        let again = zero
            .get_with(|| async { ok("zero-again", 0) })
            .await
            .unwrap();
        assert_eq!(
            again.generation(),
            2,
            "a zero-lifetime token is never reused"
        );
    }

    #[test]
    fn access_token_debug_is_redacted() {
        let token = AccessToken::new(SecretString::from("eyJhbGciOi.secret.sig".to_owned()), 3);
        let debug = format!("{token:?}");
        assert!(!debug.contains("eyJ"), "{debug}");
        assert!(debug.contains("[redacted]"));
    }
}
