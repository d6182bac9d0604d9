//! Handler tests through `router(state).oneshot(...)`, no socket and no reachable upstream: health, metrics,
//! missing tokens, unknown routes, body limits, and request ids.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use companion_mgmt::ManualClock;
use companion_protocol::api::ApiErrorBody;
use companion_proxy::config::Settings;
use companion_proxy::{AppState, router};
use time::OffsetDateTime;
use tower::ServiceExt as _;

/// A state whose tenant is a port where nothing listens.
fn offline_state(edit: impl FnOnce(&mut Settings)) -> AppState {
    let mut settings = Settings::for_test("http://127.0.0.1:9", "companion-proxy", "unused-secret")
        .expect("settings");
    edit(&mut settings);
    AppState::new(
        settings,
        Arc::new(ManualClock::new(OffsetDateTime::now_utc())),
    )
    .expect("state")
}

async fn call(
    state: AppState,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = router(state).oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body")
        .to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn healthz_answers_without_upstream() {
    let (status, headers, body) = call(
        offline_state(|_| {}),
        Request::get("/healthz")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, br#"{"status":"ok"}"#);
    assert!(
        headers.contains_key("x-request-id"),
        "a request id is generated and echoed"
    );
}

#[tokio::test]
async fn request_ids_are_echoed() {
    let (_, headers, _) = call(
        offline_state(|_| {}),
        Request::get("/healthz")
            .header("x-request-id", "req-123")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(headers["x-request-id"], "req-123");
    let (_, headers, _) = call(
        offline_state(|_| {}),
        Request::get("/healthz")
            .header("x-request-id", "eyJhbGciOiJSUzI1NiJ9 and spaces")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    let id = headers["x-request-id"].to_str().expect("ascii");
    assert!(!id.contains(' '), "an unusual id is replaced: {id}");
    assert_eq!(id.len(), 36, "by a generated UUID: {id}");
}

#[tokio::test]
async fn readyz_is_503_when_nothing_upstream_answers() {
    let (status, _, body) = call(
        offline_state(|_| {}),
        Request::get("/readyz")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["jwks"], false);
    assert_eq!(body["management_token"], false);
}

#[tokio::test]
async fn missing_tokens_and_unknown_routes_are_json_errors() {
    let state = offline_state(|_| {});
    let (status, headers, body) = call(
        state.clone(),
        Request::get("/v1/me/authenticators")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    let error: ApiErrorBody = serde_json::from_slice(&body).expect("error body");
    assert_eq!(error.error.as_str(), "invalid_token");

    let (status, _, body) = call(
        state.clone(),
        Request::get("/v2/anything")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let error: ApiErrorBody = serde_json::from_slice(&body).expect("error body");
    assert_eq!(error.error.as_str(), "not_found");

    let (status, _, body) = call(
        state,
        Request::get("/metrics")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).expect("utf-8");
    assert!(text.contains("companion_proxy_requests_total{route=\"/v1/me/authenticators\",method=\"GET\",status=\"401\"} 1"), "{text}");
    assert!(
        text.contains("companion_proxy_m2m_token_fetches_total"),
        "{text}"
    );
}

#[tokio::test]
async fn a_bad_token_is_refused_before_any_key_lookup() {
    let state = offline_state(|_| {});
    let (status, headers, _) = call(
        state.clone(),
        Request::get("/v1/me/authenticators")
            .header(header::AUTHORIZATION, "Bearer not.a.jwt!")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers[header::WWW_AUTHENTICATE],
        r#"Bearer error="invalid_token""#
    );
    assert_eq!(
        state.verifier.stats().jwks_fetches,
        0,
        "malformed tokens never reach the JWKS"
    );
    assert_eq!(state.authenticators.mgmt().upstream_calls(), 0);
}
