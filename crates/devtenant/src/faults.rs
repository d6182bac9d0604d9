//! The development control surface under `/__dev/` (off unless `--dev-controls`): inject latency, 429 or 5xx on
//! chosen routes, rotate signing keys, and read the log of Management calls.
//!
//! HTTP API (JSON):
//!
//! | route | effect |
//! |---|---|
//! | `POST /__dev/faults` body [`FaultSpec`] | adds a fault, 201 `{"id"}` |
//! | `GET /__dev/faults` | the active faults |
//! | `DELETE /__dev/faults` | clears every fault, 204 |
//! | `DELETE /__dev/faults/{id}` | clears one, 204 (404 if unknown) |
//! | `POST /__dev/keys/rotate` | new signing key, 200 `{"kid"}`; the old key stays published for the grace period |
//! | `GET /__dev/mgmt-calls` | the Management call log, oldest first ([`MgmtCall`]) |
//! | `DELETE /__dev/mgmt-calls` | clears the log, 204 |
//!
//! In-process tests use the same operations on [`Faults`] (`state.faults`). Faults apply to any route except
//! `/__dev/` itself (a JWKS outage is `{"path_prefix": "/.well-known/jwks.json", "status": 503}`); the first active
//! fault matching a request's path prefix and method is used, and one added with `times` expires after that many
//! hits. The call log is kept whether or not the HTTP surface is served, bounded to the latest
//! [`MAX_LOGGED_CALLS`] calls.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::MgmtError;
use crate::mgmt::{self, Caller};

/// The prefix of the control surface; faults never apply to it.
pub const DEV_PREFIX: &str = "/__dev/";

/// How many Management calls the log keeps (older ones are dropped).
pub const MAX_LOGGED_CALLS: usize = 10_000;

/// Longest injectable latency.
pub const MAX_LATENCY_MS: u64 = 120_000;

/// A fault to inject: latency, a status, or latency then a status, on requests whose path starts with
/// `path_prefix` (and whose method is `method`, when set), `times` times or until cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Path prefix, e.g. `/api/v2/users/` or `/oauth/token`.
    pub path_prefix: String,
    /// HTTP method (any case); `None` matches every method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Delay before answering (or before passing the request on), in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Status to answer instead of the real handler (400..=599): 429 answers Auth0's 429 with `retry-after` and
    /// `x-ratelimit-*`, 5xx an Auth0-style error body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// How many matching requests the fault affects; `None` until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// `retry-after` seconds of an injected 429 or 503 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl FaultSpec {
    /// Answer `status` on requests under `path_prefix`, until cleared.
    pub fn status(path_prefix: impl Into<String>, status: u16) -> Self {
        Self {
            path_prefix: path_prefix.into(),
            method: None,
            latency_ms: None,
            status: Some(status),
            times: None,
            retry_after: None,
        }
    }

    /// Delay requests under `path_prefix` by `latency`, until cleared.
    pub fn latency(path_prefix: impl Into<String>, latency: Duration) -> Self {
        Self {
            latency_ms: Some(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)),
            status: None,
            ..Self::status(path_prefix, 0)
        }
    }

    /// Only for requests with this method.
    #[must_use]
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    /// Only for the next `times` matching requests.
    #[must_use]
    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    /// With this `retry-after`, in seconds.
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    fn validate(&self) -> Result<(), FaultError> {
        if !self.path_prefix.starts_with('/') {
            return Err(FaultError::Invalid("path_prefix must start with /"));
        }
        if self.path_prefix.starts_with(DEV_PREFIX) {
            return Err(FaultError::Invalid("faults cannot apply to /__dev/"));
        }
        if self.latency_ms.is_none() && self.status.is_none() {
            return Err(FaultError::Invalid("set latency_ms, status or both"));
        }
        if self.status.is_some_and(|s| !(400..=599).contains(&s)) {
            return Err(FaultError::Invalid("status must be within 400..=599"));
        }
        if self.latency_ms.is_some_and(|ms| ms > MAX_LATENCY_MS) {
            return Err(FaultError::Invalid("latency_ms must be at most 120000"));
        }
        if self.times == Some(0) {
            return Err(FaultError::Invalid("times must be at least 1"));
        }
        if let Some(method) = &self.method {
            Method::from_bytes(method.as_bytes())
                .map_err(|_| FaultError::Invalid("method is not an HTTP method"))?;
        }
        Ok(())
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        path.starts_with(&self.path_prefix)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
    }
}

/// An active fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveFault {
    /// Its id, for `DELETE /__dev/faults/{id}`.
    pub id: String,
    /// What it does.
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// Hits left, when limited.
    pub remaining: Option<u32>,
    /// Requests it affected so far.
    pub hits: u64,
}

/// One Management API call as the tenant answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MgmtCall {
    /// HTTP method.
    pub method: String,
    /// The path as sent (still percent-encoded), e.g. `/api/v2/users/auth0%7C.../authentication-methods`.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The status answered (including injected faults, 401s and 429s).
    pub status: u16,
    /// The calling client, when its token verified.
    pub client_id: Option<String>,
    /// The token's `sub`, when it verified.
    pub sub: Option<String>,
    /// Tenant-clock Unix seconds of the call.
    pub at: i64,
    /// Whether the answer was an injected fault.
    pub injected: bool,
}

/// Errors of the fault API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultError {
    /// The fault is not valid.
    #[error("invalid fault: {0}")]
    Invalid(&'static str),
}

#[derive(Debug, Default)]
struct Inner {
    faults: Vec<ActiveFault>,
    calls: VecDeque<MgmtCall>,
    next_id: u64,
}

/// Injected faults and the Management call log.
#[derive(Debug, Default)]
pub struct Faults {
    inner: Mutex<Inner>,
}

impl Faults {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    /// Adds a fault and returns its id.
    ///
    /// # Errors
    /// [`FaultError::Invalid`] when the spec is not valid.
    pub fn add(&self, spec: FaultSpec) -> Result<String, FaultError> {
        spec.validate()?;
        Ok(self.with(|inner| {
            inner.next_id += 1;
            let id = format!("flt_{}", inner.next_id);
            inner.faults.push(ActiveFault {
                id: id.clone(),
                remaining: spec.times,
                spec,
                hits: 0,
            });
            id
        }))
    }

    /// Removes the fault `id`; whether it existed.
    pub fn remove(&self, id: &str) -> bool {
        self.with(|inner| {
            let before = inner.faults.len();
            inner.faults.retain(|f| f.id != id);
            inner.faults.len() != before
        })
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.with(|inner| inner.faults.clear());
    }

    /// The active faults.
    pub fn list(&self) -> Vec<ActiveFault> {
        self.with(|inner| inner.faults.clone())
    }

    /// Takes one hit of the first fault matching `method` and `path`, dropping it when used up.
    fn take(&self, method: &Method, path: &str) -> Option<FaultSpec> {
        if path.starts_with(DEV_PREFIX) {
            return None;
        }
        self.with(|inner| {
            let index = inner
                .faults
                .iter()
                .position(|f| f.spec.matches(method, path))?;
            let fault = &mut inner.faults[index];
            fault.hits += 1;
            let spec = fault.spec.clone();
            if let Some(remaining) = fault.remaining.as_mut() {
                *remaining = remaining.saturating_sub(1);
                if *remaining == 0 {
                    inner.faults.remove(index);
                }
            }
            Some(spec)
        })
    }

    /// Appends a Management call to the log.
    pub fn record(&self, call: MgmtCall) {
        self.with(|inner| {
            if inner.calls.len() >= MAX_LOGGED_CALLS {
                inner.calls.pop_front();
            }
            inner.calls.push_back(call);
        });
    }

    /// The Management call log, oldest first.
    pub fn mgmt_calls(&self) -> Vec<MgmtCall> {
        self.with(|inner| inner.calls.iter().cloned().collect())
    }

    /// Clears the Management call log.
    pub fn clear_mgmt_calls(&self) {
        self.with(|inner| inner.calls.clear());
    }

    /// How many logged Management calls had `method` (any case) and a path starting with `path_prefix`.
    pub fn count_mgmt_calls(&self, method: &str, path_prefix: &str) -> usize {
        self.with(|inner| {
            inner
                .calls
                .iter()
                .filter(|c| {
                    c.method.eq_ignore_ascii_case(method) && c.path.starts_with(path_prefix)
                })
                .count()
        })
    }
}

/// The `/__dev/` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/__dev/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/__dev/faults/{id}", delete(remove_fault))
        .route("/__dev/keys/rotate", post(rotate_keys))
        .route("/__dev/mgmt-calls", get(list_calls).delete(clear_calls))
}

fn dev_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn add_fault(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(spec) => spec,
        Err(error) => {
            return dev_error(StatusCode::BAD_REQUEST, &format!("invalid fault: {error}"));
        }
    };
    match state.faults.add(spec) {
        Ok(id) => (StatusCode::CREATED, Json(serde_json::json!({ "id": id }))).into_response(),
        Err(error) => dev_error(StatusCode::BAD_REQUEST, &error.to_string()),
    }
}

async fn list_faults(State(state): State<AppState>) -> Json<Vec<ActiveFault>> {
    Json(state.faults.list())
}

async fn clear_faults(State(state): State<AppState>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if state.faults.remove(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        dev_error(StatusCode::NOT_FOUND, "no such fault")
    }
}

async fn rotate_keys(State(state): State<AppState>) -> Response {
    let keys = state.keys.clone();
    let now = state.clock.unix();
    // RSA key generation takes a while: keep it off the async workers.
    match tokio::task::spawn_blocking(move || keys.rotate(now)).await {
        Ok(Ok(kid)) => {
            tracing::info!(%kid, "signing key rotated");
            Json(serde_json::json!({ "kid": kid })).into_response()
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "key rotation failed");
            dev_error(StatusCode::INTERNAL_SERVER_ERROR, "key rotation failed")
        }
        Err(error) => {
            tracing::error!(%error, "key rotation task failed");
            dev_error(StatusCode::INTERNAL_SERVER_ERROR, "key rotation failed")
        }
    }
}

async fn list_calls(State(state): State<AppState>) -> Json<Vec<MgmtCall>> {
    Json(state.faults.mgmt_calls())
}

async fn clear_calls(State(state): State<AppState>) -> StatusCode {
    state.faults.clear_mgmt_calls();
    StatusCode::NO_CONTENT
}

/// The response of an injected status: Auth0's Management body under `/api/v2/`, an OAuth-style body elsewhere.
fn injected_response(state: &AppState, spec: &FaultSpec, status: u16, is_mgmt: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let retry_after = spec.retry_after.unwrap_or(1).max(1);
    let reason = status.canonical_reason().unwrap_or("Error");
    let mut response = if is_mgmt {
        if status == StatusCode::TOO_MANY_REQUESTS {
            MgmtError::too_many_requests().into_response()
        } else {
            let message = if status.is_server_error() {
                "An internal server error occurred"
            } else {
                reason
            };
            MgmtError::new(status, message, None).into_response()
        }
    } else {
        let error = if status == StatusCode::TOO_MANY_REQUESTS {
            "too_many_requests".to_owned()
        } else if status.is_server_error() {
            "server_error".to_owned()
        } else {
            reason.to_ascii_lowercase().replace(' ', "_")
        };
        (
            status,
            Json(serde_json::json!({ "error": error, "error_description": reason })),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    if status == StatusCode::TOO_MANY_REQUESTS {
        let limit = state.mgmt.peek(state.clock.now()).limit;
        headers.insert(mgmt::ratelimit::X_RATELIMIT_LIMIT, HeaderValue::from(limit));
        headers.insert(mgmt::ratelimit::X_RATELIMIT_REMAINING, HeaderValue::from(0));
        headers.insert(
            mgmt::ratelimit::X_RATELIMIT_RESET,
            HeaderValue::from(state.clock.unix().saturating_add_unsigned(retry_after)),
        );
    } else if is_mgmt {
        state.mgmt.peek(state.clock.now()).apply(headers);
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    }
    response
}

/// Middleware around the whole router: applies injected faults, runs the Management gateway for `/api/v2/`
/// ([`mgmt::gateway`]), and logs Management calls.
pub async fn inject(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let is_mgmt = mgmt::is_mgmt_path(&path);
    let mut injected = false;
    let mut response = None;
    if let Some(spec) = state.faults.take(&method, &path) {
        if let Some(ms) = spec.latency_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some(status) = spec.status {
            injected = true;
            response = Some(injected_response(&state, &spec, status, is_mgmt));
        }
    }
    if !is_mgmt {
        return match response {
            Some(response) => response,
            None => next.run(request).await,
        };
    }
    let query = request.uri().query().map(str::to_owned);
    // Injected faults and 429s of the bucket answer before authentication: identify their caller for the log anyway.
    let mut credentials = axum::http::HeaderMap::new();
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        credentials.insert(header::AUTHORIZATION, value.clone());
    }
    let (response, caller) = match response {
        Some(response) => (response, None),
        None => {
            let response = mgmt::gateway(&state, request, next).await;
            let caller = response.extensions().get::<Caller>().cloned();
            (response, caller)
        }
    };
    let caller = caller.or_else(|| {
        let status = response.status();
        (injected || status == StatusCode::TOO_MANY_REQUESTS)
            .then(|| mgmt::auth::authenticate(&state, &credentials).ok())
            .flatten()
    });
    state.faults.record(MgmtCall {
        method: method.to_string(),
        path,
        query,
        status: response.status().as_u16(),
        client_id: caller.as_ref().and_then(|c| c.client_id.clone()),
        sub: caller.map(|c| c.sub),
        at: state.clock.unix(),
        injected,
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_match_by_prefix_and_method_and_expire_after_times() {
        let faults = Faults::default();
        faults
            .add(
                FaultSpec::status("/api/v2/users/", 429)
                    .method("get")
                    .times(2),
            )
            .expect("valid");
        assert!(
            faults.take(&Method::POST, "/api/v2/users/x").is_none(),
            "method differs"
        );
        assert!(
            faults.take(&Method::GET, "/oauth/token").is_none(),
            "path differs"
        );
        assert!(faults.take(&Method::GET, "/api/v2/users/x").is_some());
        assert_eq!(faults.list()[0].remaining, Some(1));
        assert!(faults.take(&Method::GET, "/api/v2/users/y").is_some());
        assert!(faults.list().is_empty(), "used up after two hits");
        assert!(faults.take(&Method::GET, "/api/v2/users/x").is_none());
    }

    #[test]
    fn invalid_faults_are_refused() {
        let faults = Faults::default();
        for spec in [
            FaultSpec::status("api", 500),
            FaultSpec::status("/x", 200),
            FaultSpec::status("/__dev/faults", 500),
            FaultSpec::status("/x", 500).times(0),
            FaultSpec {
                status: None,
                ..FaultSpec::status("/x", 500)
            },
            FaultSpec::latency("/x", Duration::from_secs(600)),
        ] {
            assert!(faults.add(spec.clone()).is_err(), "{spec:?}");
        }
        let id = faults.add(FaultSpec::status("/x", 503)).expect("valid");
        assert!(faults.remove(&id));
        assert!(!faults.remove(&id));
    }

    #[test]
    fn the_call_log_is_bounded_and_counts_by_method_and_prefix() {
        let faults = Faults::default();
        let call = |method: &str, path: &str| MgmtCall {
            method: method.to_owned(),
            path: path.to_owned(),
            query: None,
            status: 200,
            client_id: None,
            sub: None,
            at: 0,
            injected: false,
        };
        for _ in 0..MAX_LOGGED_CALLS {
            faults.record(call("GET", "/api/v2/guardian/factors"));
        }
        faults.record(call("DELETE", "/api/v2/users/a/authentication-methods/b"));
        assert_eq!(faults.mgmt_calls().len(), MAX_LOGGED_CALLS);
        assert_eq!(faults.count_mgmt_calls("delete", "/api/v2/users/"), 1);
        assert_eq!(
            faults.count_mgmt_calls("GET", "/api/v2/"),
            MAX_LOGGED_CALLS - 1
        );
        faults.clear_mgmt_calls();
        assert!(faults.mgmt_calls().is_empty());
    }
}
