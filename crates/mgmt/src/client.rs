//! [`MgmtClient`]: the typed Management API calls, their retries and their error mapping.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use companion_protocol::auth0::{
    AuthenticationMethod, AuthenticationMethodsPage, AuthenticationMethodsResponse,
    EnrollmentTicket, EnrollmentTicketRequest, MgmtErrorBody, UpdateAuthenticationMethod,
};
use rand::Rng;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;

use crate::clock::{Clock, SystemClock};
use crate::config::MgmtConfig;
use crate::error::{ConfigError, MgmtError, Operation};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::path::{SegmentError, encode_segment};
use crate::retry::{RetryPolicy, WaitBudget, server_delay};
use crate::token::{TokenCache, TokenEndpoint};

/// `application/json`, as a header value that costs nothing to clone.
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Upper bound on pages read by one list call (5,000 methods at 50 per page).
const MAX_PAGES: u32 = 100;

/// A typed Auth0 Management API client holding one HTTP client and one cached M2M token. Cheap to clone.
///
/// Every call retries as [`RetryPolicy`] says: a 429 waits for `Retry-After` / `x-ratelimit-reset` within the
/// budget and then fails with [`MgmtError::Busy`]; 5xx, timeouts and transport errors are retried with backoff
/// only for idempotent operations ([`Operation::is_idempotent`]); a refused connection is retried for every
/// operation, since the request never left. A 401 drops the cached token once and retries with a fresh one.
#[derive(Clone)]
pub struct MgmtClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    api: String,
    tokens: TokenCache,
    metrics: Arc<Metrics>,
    policy: RetryPolicy,
    page_size: u32,
    clock: Arc<dyn Clock>,
    in_flight: tokio::sync::Semaphore,
}

impl std::fmt::Debug for MgmtClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MgmtClient")
            .field("tenant", &self.inner.base)
            .field("tokens", &self.inner.tokens)
            .field("page_size", &self.inner.page_size)
            .finish_non_exhaustive()
    }
}

/// One page of the list endpoint, in either documented shape: a bare array, or `{start, limit, total?,
/// authenticators}`. The first byte picks the shape, so the body is decoded once and directly, not buffered and
/// tried shape by shape as `#[serde(untagged)]` would (that buffering was a measurable share of the proxy's CPU per
/// request). Anything else is decoded as [`AuthenticationMethodsResponse`] for its error message.
fn decode_list_page(
    op: Operation,
    body: &[u8],
) -> Result<(Vec<AuthenticationMethod>, Option<u64>), MgmtError> {
    let decode_error = |source| MgmtError::Decode { op, source };
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice::<Vec<AuthenticationMethod>>(body)
            .map(|items| (items, None))
            .map_err(decode_error),
        Some(b'{') => serde_json::from_slice::<AuthenticationMethodsPage>(body)
            .map(|page| (page.authenticators, page.total))
            .map_err(decode_error),
        _ => match serde_json::from_slice::<AuthenticationMethodsResponse>(body)
            .map_err(decode_error)?
        {
            AuthenticationMethodsResponse::Bare(items) => Ok((items, None)),
            AuthenticationMethodsResponse::Paged(page) => Ok((page.authenticators, page.total)),
        },
    }
}

/// Builds the one outbound HTTP client of a process that talks to Auth0: rustls with the native roots plus
/// `config`'s optional extra CA, no redirects, `config`'s connect and request timeouts and user agent. Proxies from
/// `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` stay on (reqwest's default; this function must never call
/// `no_proxy`).
///
/// [`MgmtClient::new`] builds one itself; the proxy builds it here once and shares it between its JWKS fetcher and
/// [`MgmtClient::with_http`], so both follow the same rules and share one connection pool.
///
/// # Errors
/// [`ConfigError`] when the extra CA file is unreadable, holds no certificate, or the client cannot be built.
pub fn http_client(config: &MgmtConfig) -> Result<reqwest::Client, ConfigError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .user_agent(config.user_agent.clone());
    if let Some(path) = &config.extra_ca_file {
        let pem = std::fs::read(path).map_err(|source| ConfigError::CaFileRead {
            path: path.clone(),
            source,
        })?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
            ConfigError::CaFileInvalid {
                path: path.clone(),
                source: Some(source),
            }
        })?;
        if certificates.is_empty() {
            return Err(ConfigError::CaFileInvalid {
                path: path.clone(),
                source: None,
            });
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(ConfigError::HttpClient)
}

impl MgmtClient {
    /// A client using the system clock.
    ///
    /// # Errors
    /// [`MgmtError::InvalidConfig`] when the configuration is invalid or the extra CA file is unusable.
    pub fn new(config: MgmtConfig) -> Result<Self, MgmtError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A client reading wall-clock time (for `x-ratelimit-reset` and HTTP-date `Retry-After`) from `clock`.
    ///
    /// # Errors
    /// [`MgmtError::InvalidConfig`] when the configuration is invalid or the extra CA file is unusable.
    pub fn with_clock(config: MgmtConfig, clock: Arc<dyn Clock>) -> Result<Self, MgmtError> {
        let http = http_client(&config)?;
        Self::with_http(config, http, clock)
    }

    /// A client sending through `http`, an outbound client shared with other parts of the process (build it with
    /// [`http_client`] so it keeps the rules: no redirects, timeouts, native roots plus the extra CA, proxies from the
    /// environment). `config`'s timeouts, user agent and CA file are then those `http` was built with.
    ///
    /// # Errors
    /// [`MgmtError::InvalidConfig`] when the configuration is invalid.
    pub fn with_http(
        config: MgmtConfig,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, MgmtError> {
        let base = config.validate()?;
        let metrics = Arc::new(Metrics::default());
        let endpoint = TokenEndpoint {
            http: http.clone(),
            url: format!("{base}/oauth/token"),
            audience: config.effective_audience(&base),
            client_id: config.client_id,
            client_secret: config.client_secret,
            policy: config.retry.clone(),
            clock: clock.clone(),
        };
        let tokens = TokenCache::new(endpoint, config.token_refresh_slack, metrics.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                api: format!("{base}/api/v2"),
                base,
                tokens,
                metrics,
                policy: config.retry,
                page_size: config.page_size,
                clock,
                in_flight: tokio::sync::Semaphore::new(config.max_concurrent_calls),
            }),
        })
    }

    /// The tenant base URL, without a trailing slash.
    pub fn tenant_url(&self) -> &str {
        &self.inner.base
    }

    /// The token cache, e.g. to warm it at start-up.
    pub fn token_cache(&self) -> &TokenCache {
        &self.inner.tokens
    }

    /// Obtains a token if none is cached (for a readiness check).
    ///
    /// # Errors
    /// [`MgmtError::TokenRequest`] when no token can be had.
    pub async fn ensure_token(&self) -> Result<(), MgmtError> {
        self.inner.tokens.access_token().await?;
        Ok(())
    }

    /// All counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Requests sent to the Management API so far (each attempt counts; token requests do not).
    pub fn upstream_calls(&self) -> u64 {
        self.inner.metrics.upstream_calls.load(Ordering::Relaxed)
    }

    /// Requests sent to the token endpoint so far.
    pub fn token_fetches(&self) -> u64 {
        self.inner.metrics.token_fetches.load(Ordering::Relaxed)
    }

    /// 429 answers received so far (Management API and token endpoint).
    pub fn rate_limited(&self) -> u64 {
        self.inner.metrics.rate_limited.load(Ordering::Relaxed)
    }

    /// All authentication methods of `user_id`, reading every page (`include_totals=true`, `per_page` from the
    /// configuration). Accepts the paged and the bare-array shapes, and a page without `total`.
    ///
    /// # Errors
    /// [`MgmtError`]; `NotFound` when the user does not exist.
    pub async fn list_methods(
        &self,
        user_id: &str,
    ) -> Result<Vec<AuthenticationMethod>, MgmtError> {
        let op = Operation::ListMethods;
        let user = segment(op, "user", user_id)?;
        let per_page = self.inner.page_size;
        let mut methods = Vec::new();
        let mut seen = HashSet::new();
        for page in 0..MAX_PAGES {
            let url = format!(
                "{}/users/{user}/authentication-methods?include_totals=true&per_page={per_page}&page={page}",
                self.inner.api
            );
            let body = self.send(op, Method::GET, &url, None).await?;
            let (items, total) = decode_list_page(op, &body)?;
            let count = items.len();
            let mut added = 0usize;
            for method in items {
                if seen.insert(method.id.clone()) {
                    methods.push(method);
                    added += 1;
                }
            }
            let done = match total {
                Some(total) => methods.len() as u64 >= total,
                None => count < per_page as usize,
            };
            // A page with nothing new means the server ignores paging or the list shrank under us.
            if done || added == 0 {
                return Ok(methods);
            }
        }
        Err(MgmtError::TooManyPages { op })
    }

    /// One authentication method.
    ///
    /// # Errors
    /// [`MgmtError`]; `NotFound` when the user or method does not exist.
    pub async fn get_method(
        &self,
        user_id: &str,
        method_id: &str,
    ) -> Result<AuthenticationMethod, MgmtError> {
        let op = Operation::GetMethod;
        let url = self.method_url(op, user_id, method_id)?;
        self.call_json(op, Method::GET, url, None).await
    }

    /// Sets a method's name (Auth0 allows at most 20 characters). Retried like GET: see [`Operation::is_idempotent`].
    ///
    /// # Errors
    /// [`MgmtError`]; `NotFound` when the user or method does not exist, `Rejected` for an invalid name.
    pub async fn rename_method(
        &self,
        user_id: &str,
        method_id: &str,
        name: &str,
    ) -> Result<AuthenticationMethod, MgmtError> {
        let op = Operation::RenameMethod;
        let url = self.method_url(op, user_id, method_id)?;
        let body = UpdateAuthenticationMethod {
            name: Some(name.to_owned()),
            preferred_authentication_method: None,
        };
        let body = serde_json::to_vec(&body).map_err(|source| MgmtError::Decode { op, source })?;
        self.call_json(op, Method::PATCH, url, Some(body)).await
    }

    /// Deletes one authentication method. Retried after ambiguous failures, so a retry may find the method already
    /// gone and report `NotFound`.
    ///
    /// # Errors
    /// [`MgmtError`]; `NotFound` when the user or method does not exist.
    pub async fn delete_method(&self, user_id: &str, method_id: &str) -> Result<(), MgmtError> {
        let op = Operation::DeleteMethod;
        let url = self.method_url(op, user_id, method_id)?;
        self.send(op, Method::DELETE, &url, None).await?;
        Ok(())
    }

    /// Creates an enrollment ticket. Never retried once the request may have reached the server: every POST mints
    /// a new single-use ticket.
    ///
    /// # Errors
    /// [`MgmtError`]; `NotFound` when the user does not exist.
    pub async fn create_enrollment_ticket(
        &self,
        request: &EnrollmentTicketRequest,
    ) -> Result<EnrollmentTicket, MgmtError> {
        let op = Operation::CreateEnrollmentTicket;
        let url = format!("{}/guardian/enrollments/ticket", self.inner.api);
        let body =
            serde_json::to_vec(request).map_err(|source| MgmtError::Decode { op, source })?;
        self.call_json(op, Method::POST, url, Some(body)).await
    }

    /// Any other Management API call: `method` on `path` (relative to `/api/v2`, starting with `/`, already
    /// percent-encoded, query included) with an optional JSON body, under the same token, retry and error rules as
    /// the typed calls. `op` names the call; build it with [`Operation::Other`], marking POSTs that create
    /// something as not idempotent. Returns the JSON answer, or `null` for an empty one (204).
    ///
    /// # Errors
    /// [`MgmtError`] as for the typed calls; [`MgmtError::InvalidPath`] (no request sent) when `path` does not start
    /// with a single `/`.
    pub async fn request_json(
        &self,
        op: Operation,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, MgmtError> {
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(MgmtError::InvalidPath { op });
        }
        let url = format!("{}{path}", self.inner.api);
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|source| MgmtError::Decode { op, source })?;
        let bytes = self.send(op, method, &url, body).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|source| MgmtError::Decode { op, source })
    }

    fn method_url(
        &self,
        op: Operation,
        user_id: &str,
        method_id: &str,
    ) -> Result<String, MgmtError> {
        let user = segment(op, "user", user_id)?;
        let method = segment(op, "method", method_id)?;
        Ok(format!(
            "{}/users/{user}/authentication-methods/{method}",
            self.inner.api
        ))
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        op: Operation,
        method: Method,
        url: String,
        body: Option<Vec<u8>>,
    ) -> Result<T, MgmtError> {
        let bytes = self.send(op, method, &url, body).await?;
        serde_json::from_slice(&bytes).map_err(|source| MgmtError::Decode { op, source })
    }

    /// Sends one call with the retry rules, returning the body of a 2xx answer.
    async fn send(
        &self,
        op: Operation,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<bytes::Bytes, MgmtError> {
        let inner = &self.inner;
        let idempotent = op.is_idempotent();
        let mut budget = WaitBudget::new(&inner.policy);
        let mut failures: u32 = 0;
        let mut refreshed = false;
        loop {
            let token = inner.tokens.access_token().await?;
            inner.metrics.upstream_calls.fetch_add(1, Ordering::Relaxed);
            let request = inner.http.request(method.clone(), url);
            let mut request = match token.authorization() {
                Some(value) => request.header(AUTHORIZATION, value.clone()),
                None => request.bearer_auth(token.secret().expose_secret()),
            }
            .header(ACCEPT, APPLICATION_JSON);
            if let Some(body) = &body {
                request = request
                    .header(CONTENT_TYPE, APPLICATION_JSON)
                    .body(body.clone());
            }
            // The permit covers the exchange (request and body), not the waits between attempts. The semaphore is
            // never closed, so `acquire` cannot fail.
            let mut permit = inner.in_flight.acquire().await.ok();
            let (error, retryable) = match request.send().await {
                Err(error) => {
                    // A refused connection never delivered the request, so even a POST may be sent again.
                    let retryable = idempotent || (error.is_connect() && !error.is_timeout());
                    (transport(op, error), retryable)
                }
                Ok(response) => {
                    let status = response.status();
                    tracing::debug!(%op, status = status.as_u16(), "management api answered");
                    if status.is_success() {
                        match response.bytes().await {
                            Ok(bytes) => return Ok(bytes),
                            Err(error) => (transport(op, error), idempotent),
                        }
                    } else {
                        let headers = response.headers().clone();
                        let error_body = response
                            .bytes()
                            .await
                            .ok()
                            .and_then(|b| serde_json::from_slice::<MgmtErrorBody>(&b).ok());
                        match status {
                            StatusCode::UNAUTHORIZED if !refreshed => {
                                tracing::debug!(%op, "management api rejected the token; fetching a new one");
                                refreshed = true;
                                inner.tokens.invalidate(&token);
                                continue;
                            }
                            StatusCode::UNAUTHORIZED => {
                                return Err(MgmtError::Unauthorized {
                                    op,
                                    body: error_body,
                                });
                            }
                            StatusCode::FORBIDDEN => {
                                let message = error_body
                                    .as_ref()
                                    .map_or_else(|| "forbidden".to_owned(), |b| b.message.clone());
                                return Err(MgmtError::Forbidden {
                                    op,
                                    message,
                                    body: error_body,
                                });
                            }
                            StatusCode::NOT_FOUND => {
                                return Err(MgmtError::NotFound {
                                    op,
                                    body: error_body,
                                });
                            }
                            StatusCode::TOO_MANY_REQUESTS => {
                                inner.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
                                let delay = server_delay(&headers, inner.clock.now_utc());
                                match budget.admit(&inner.policy, delay) {
                                    Ok(wait) => {
                                        drop(permit.take());
                                        tracing::debug!(%op, ?wait, "management api rate limited; waiting");
                                        tokio::time::sleep(wait).await;
                                        continue;
                                    }
                                    Err(retry_after) => {
                                        return Err(MgmtError::Busy { op, retry_after });
                                    }
                                }
                            }
                            status if status.is_server_error() => (
                                MgmtError::Upstream {
                                    op,
                                    status: status.as_u16(),
                                    body: error_body,
                                },
                                idempotent,
                            ),
                            status if status.is_client_error() => {
                                return Err(MgmtError::Rejected {
                                    op,
                                    status: status.as_u16(),
                                    body: error_body,
                                });
                            }
                            status => {
                                return Err(MgmtError::Upstream {
                                    op,
                                    status: status.as_u16(),
                                    body: error_body,
                                });
                            }
                        }
                    }
                }
            };
            drop(permit.take());
            failures += 1;
            if !retryable || failures >= inner.policy.max_attempts {
                return Err(error);
            }
            inner.metrics.retries.fetch_add(1, Ordering::Relaxed);
            let delay = inner
                .policy
                .backoff(failures - 1, rand::thread_rng().r#gen::<f64>());
            tracing::debug!(%op, %error, ?delay, "management api call failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

fn segment(op: Operation, what: &'static str, id: &str) -> Result<String, MgmtError> {
    encode_segment(id).map_err(|_: SegmentError| MgmtError::InvalidId { op, what })
}

fn transport(op: Operation, error: reqwest::Error) -> MgmtError {
    if error.is_timeout() {
        MgmtError::Timeout { op }
    } else {
        // Without the URL: it names the user, which belongs in audit records, not in error chains.
        MgmtError::Transport {
            op,
            source: error.without_url(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METHOD: &str = r#"{"id": "totp|dev_1", "type": "totp", "confirmed": true, "created_at": "2026-01-05T09:00:00.000Z"}"#;

    #[test]
    fn list_pages_decode_in_both_shapes() {
        let op = Operation::ListMethods;
        let (items, total) = decode_list_page(op, format!(" \n[{METHOD}]").as_bytes()).unwrap();
        assert_eq!(
            (items.len(), total),
            (1, None),
            "a bare array, after whitespace"
        );
        let paged =
            format!(r#"{{"start": 0, "limit": 50, "total": 1, "authenticators": [{METHOD}]}}"#);
        let (items, total) = decode_list_page(op, paged.as_bytes()).unwrap();
        assert_eq!((items.len(), total), (1, Some(1)), "a page with totals");
        assert_eq!(items[0].id, "totp|dev_1");
        let (items, total) =
            decode_list_page(op, br#"{"start": 0, "limit": 50, "authenticators": []}"#).unwrap();
        assert_eq!(
            (items.len(), total),
            (0, None),
            "Auth0 omits total when empty"
        );
        for bad in [&b""[..], b"null", b"{\"start\": 0}", b"[1]"] {
            assert!(
                matches!(decode_list_page(op, bad), Err(MgmtError::Decode { .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
