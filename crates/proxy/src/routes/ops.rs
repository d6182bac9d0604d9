//! Operations routes: `/healthz` (the process serves), `/readyz` (JWKS loaded and a Management token can be
//! had), `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use companion_protocol::api::{HEALTHZ_PATH, METRICS_PATH, READYZ_PATH};
use serde_json::json;

use crate::AppState;
use crate::metrics::Upstream;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(HEALTHZ_PATH, get(healthz))
        .route(READYZ_PATH, get(readyz))
        .route(METRICS_PATH, get(metrics))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let jwks = state.verifier.jwks();
    if !jwks.is_loaded()
        && let Err(error) = jwks.load().await
    {
        tracing::warn!(error = %crate::error::error_chain(&error), "readiness: jwks unavailable");
    }
    let keys = jwks.is_loaded();
    let token = match state.authenticators.mgmt().ensure_token().await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(error = %crate::error::error_chain(&error), "readiness: no management token");
            false
        }
    };
    let status = if keys && token {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ready" } else { "not_ready" },
        "jwks": keys,
        "management_token": token,
    });
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let upstream = Upstream {
        mgmt: state.authenticators.mgmt().metrics(),
        verifier: state.verifier.stats(),
        joined_reads: state.authenticators.joined_reads(),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&upstream),
    )
        .into_response()
}
