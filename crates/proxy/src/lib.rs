//! The Passkey Companion backend: turns a user's own access token into exactly the Management API calls that
//! user may make.
//!
//! - [`config`]: [`Config`](config::Config) (flags, `COMPANION_*` environment, `--config` TOML) validated into
//!   [`Settings`].
//! - [`auth`]: the [`AuthenticatedUser`](auth::AuthenticatedUser) extractor, the JWKS cache and the verified-token
//!   cache.
//! - [`service`], [`policy`], [`present`]: the operations, the lockout guard and step-up rules, and the
//!   presentation of methods (AAGUID providers, user agents, display names).
//! - [`routes`]: `/v1/me/*`, `/healthz`, `/readyz`, `/metrics`; [`router`] assembles them with the layers.
//! - [`server`]: the HTTP/1.1 connection loop behind [`serve`].
//! - [`error`]: the one [`ApiError`]; [`audit`], [`metrics`], [`telemetry`]: observability.

pub mod audit;
pub mod auth;
pub mod config;
pub mod error;
pub mod metrics;
pub mod policy;
pub mod present;
pub mod routes;
pub mod server;
pub mod service;
pub mod telemetry;

/// The clock [`AppState::new`] takes, re-exported so embedders and tests (the `passkeys` CLI's) need not depend on
/// `companion-mgmt`.
pub use companion_mgmt::{Clock, SystemClock};

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use companion_mgmt::{MgmtClient, MgmtConfig, MgmtError};
use tokio::net::TcpListener;
use tracing::Instrument as _;

use crate::auth::TokenVerifier;
use crate::auth::jwks::JwksCache;
use crate::config::Settings;
use crate::error::{ApiError, DEFAULT_RETRY_AFTER, ErrorDetail};
use crate::metrics::Metrics;
use crate::present::AaguidDb;
use crate::service::Authenticators;

/// The request id header: taken from the client when present, generated otherwise, echoed in the response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Why the proxy could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The Management client could not be built.
    #[error("cannot build the management api client")]
    Mgmt(#[source] MgmtError),
    /// The outbound HTTP client (JWKS and Management API) could not be built, e.g. the extra CA file is unusable.
    #[error("cannot build the outbound http client")]
    Http(#[source] companion_mgmt::ConfigError),
    /// The bundled AAGUID snapshot is invalid.
    #[error("the bundled aaguid list is invalid")]
    Aaguids(#[source] serde_json::Error),
}

/// Shared state of every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Wall-clock time, injected.
    pub clock: Arc<dyn Clock>,
    /// Access-token verification.
    pub verifier: Arc<TokenVerifier>,
    /// The authenticator operations (and the Management client).
    pub authenticators: Arc<Authenticators>,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("issuer", &self.settings.issuer)
            .field("audience", &self.settings.audience)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Builds the state: the Management client, the JWKS cache and the verifier. Nothing is fetched yet; call
    /// [`AppState::warm_up`].
    ///
    /// # Errors
    /// [`StartError`] when a client cannot be built.
    pub fn new(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let mut mgmt_config = MgmtConfig::new(
            settings.auth0_url.clone(),
            settings.mgmt_client_id.clone(),
            settings.mgmt_client_secret.clone(),
        );
        mgmt_config.request_timeout = settings.upstream_timeout;
        mgmt_config.connect_timeout = settings
            .upstream_timeout
            .min(std::time::Duration::from_secs(5));
        mgmt_config.extra_ca_file = settings.extra_ca_file.clone();
        mgmt_config.retry = settings.mgmt_retry.clone();
        mgmt_config.user_agent = concat!("companion-proxy/", env!("CARGO_PKG_VERSION")).to_owned();
        // One outbound client for the JWKS and the Management API: the same rules (no redirects, timeouts, native
        // roots plus the extra CA, HTTPS_PROXY) and one connection pool.
        let http = companion_mgmt::http_client(&mgmt_config).map_err(StartError::Http)?;
        let mgmt = MgmtClient::with_http(mgmt_config, http.clone(), clock.clone())
            .map_err(StartError::Mgmt)?;
        let jwks = JwksCache::new(
            http,
            settings.jwks_url.to_string(),
            clock.clone(),
            settings.jwks_min_refresh,
            settings.jwks_max_age,
        );
        let verifier = TokenVerifier::new(
            settings.issuer.0.clone(),
            settings.audience.0.clone(),
            settings.clock_leeway,
            clock.clone(),
            jwks,
            settings.token_cache_size,
        );
        let aaguids = AaguidDb::bundled().map_err(StartError::Aaguids)?;
        let authenticators =
            Authenticators::new(mgmt, aaguids, clock.clone(), settings.list_share_window);
        Ok(Self {
            settings: Arc::new(settings),
            clock,
            verifier: Arc::new(verifier),
            authenticators: Arc::new(authenticators),
            metrics: Arc::new(Metrics::default()),
        })
    }

    /// Loads the JWKS and a Management token. Failures are logged, not fatal: `/readyz` reports them and both
    /// are retried on demand.
    pub async fn warm_up(&self) {
        if let Err(error) = self.verifier.jwks().load().await {
            tracing::warn!(error = %error::error_chain(&error), "jwks not loaded at start-up");
        }
        if let Err(error) = self.authenticators.mgmt().ensure_token().await {
            tracing::warn!(error = %error::error_chain(&error), "no management token at start-up");
        }
    }
}

/// Bounded set of method labels for metrics.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Longest client-supplied request id kept; longer or unusual ones are replaced by a generated id.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// [`REQUEST_ID_HEADER`] as a header name, built at compile time.
const REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// Whether a client `x-request-id` may be kept: at most [`MAX_REQUEST_ID_LEN`] bytes of `[A-Za-z0-9._:-]`, since
/// request ids end up in every log line and must stay short and inert.
fn acceptable_request_id(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A new request id: a random (v4) UUID from the thread's generator, which needs no system call per id.
fn new_request_id() -> HeaderValue {
    let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid.hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The state of [`envelope`]: the app state and the concurrency limit's permits.
#[derive(Clone)]
struct Envelope {
    state: AppState,
    permits: Arc<tokio::sync::Semaphore>,
}

/// Everything around a handler, in one middleware so that a request pays for one boxed layer, not six: marks
/// Authorization and Cookie sensitive; keeps an acceptable client `x-request-id` or sets a generated one; opens the
/// request span (`method`, `route`, `request_id`, `sub`); runs the handler under the request deadline and the
/// concurrency limit (waiting for a permit counts towards the deadline); logs the cause of a 5xx inside the span;
/// records the request metrics; logs the response at info level; echoes the request id in the response.
async fn envelope(State(envelope): State<Envelope>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let headers = request.headers_mut();
    for name in [header::AUTHORIZATION, header::COOKIE] {
        if let header::Entry::Occupied(mut values) = headers.entry(name) {
            for value in values.iter_mut() {
                value.set_sensitive(true);
            }
        }
    }
    let request_id = match headers.get(&REQUEST_ID) {
        Some(value) if acceptable_request_id(value.as_bytes()) => value.clone(),
        _ => {
            let generated = new_request_id();
            headers.insert(REQUEST_ID, generated.clone());
            generated
        }
    };
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = method_label(request.method());
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        request_id = request_id.to_str().unwrap_or("-"),
        sub = tracing::field::Empty,
    );
    let state = &envelope.state;
    let mut response = async {
        tracing::debug!("started processing request");
        let work = async {
            // The semaphore is never closed, so `acquire` cannot fail.
            let _permit = envelope.permits.acquire().await.ok();
            next.run(request).await
        };
        let response = match tokio::time::timeout(state.settings.request_timeout, work).await {
            Ok(response) => response,
            Err(_) => ApiError::UpstreamUnavailable {
                retry_after: DEFAULT_RETRY_AFTER,
                detail: "the request timed out".to_owned(),
            }
            .into_response(),
        };
        let status = response.status().as_u16();
        if let Some(ErrorDetail(detail)) = response.extensions().get::<ErrorDetail>() {
            tracing::error!(status, detail = %detail, "request failed");
        }
        let elapsed = started.elapsed();
        state.metrics.observe(route, method, status, elapsed);
        tracing::info!(
            latency = %format_args!("{} ms", elapsed.as_millis()),
            status,
            "finished processing request"
        );
        response
    }
    .instrument(span)
    .await;
    response
        .headers_mut()
        .entry(REQUEST_ID)
        .or_insert(request_id);
    response
}

async fn no_route() -> ApiError {
    ApiError::NoRoute
}

/// The proxy's routes with every layer, outermost first: [`envelope`] (sensitive headers, request id, span,
/// metrics, error logging, deadline, concurrency limit, request id echo), then the body size limit.
pub fn router(state: AppState) -> Router {
    let permits = state
        .settings
        .max_concurrency
        .min(tokio::sync::Semaphore::MAX_PERMITS);
    let envelope_state = Envelope {
        state: state.clone(),
        permits: Arc::new(tokio::sync::Semaphore::new(permits)),
    };
    Router::new()
        .merge(routes::me::routes())
        .merge(routes::ops::routes())
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(middleware::from_fn_with_state(envelope_state, envelope))
        .with_state(state)
}

/// Serves `state`'s router on `listener` (HTTP/1.1, see [`server`]) until `shutdown` completes, then drains
/// in-flight requests.
///
/// # Errors
/// When the server fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve_router(listener, router(state), shutdown).await
}
