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
use axum::http::{HeaderName, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use companion_mgmt::{MgmtClient, MgmtConfig, MgmtError};
use tokio::net::TcpListener;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

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

async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe(
        &route,
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn log_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(ErrorDetail(detail)) = response.extensions().get::<ErrorDetail>() {
        tracing::error!(status = response.status().as_u16(), detail = %detail, "request failed");
    }
    response
}

async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(state.settings.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::UpstreamUnavailable {
            retry_after: DEFAULT_RETRY_AFTER,
            detail: "the request timed out".to_owned(),
        }
        .into_response(),
    }
}

/// Longest client-supplied request id kept; longer or unusual ones are replaced by a generated id.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Drops a client `x-request-id` that is too long or holds characters outside `[A-Za-z0-9._:-]`, so a generated
/// one takes its place: request ids end up in every log line and must stay short and inert.
async fn sanitize_request_id(mut request: Request, next: Next) -> Response {
    let acceptable = request.headers().get(REQUEST_ID_HEADER).map(|value| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_LEN
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    });
    if acceptable == Some(false) {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    next.run(request).await
}

async fn no_route() -> ApiError {
    ApiError::NoRoute
}

/// The proxy's routes with every layer, outermost first: sensitive headers (Authorization, Cookie), request id
/// (sanitised, set, then propagated), trace span (with `request_id`), metrics, error logging, the request deadline, the
/// concurrency limit, the body size limit.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            let request_id = request
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            tracing::info_span!(
                "request",
                method = %request.method(),
                route,
                request_id,
                sub = tracing::field::Empty,
            )
        })
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO));
    Router::new()
        .merge(routes::me::routes())
        .merge(routes::ops::routes())
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(GlobalConcurrencyLimitLayer::new(
            state.settings.max_concurrency,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn(log_errors))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(middleware::from_fn(sanitize_request_id))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
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
