//! The SSO session cookie, `/userinfo` and `/v2/logout`.

use axum::http::StatusCode;
use axum::response::IntoResponse;

/// `GET /userinfo`.
pub async fn userinfo() -> impl IntoResponse {
    StatusCode::NOT_IMPLEMENTED
}

/// `GET /v2/logout`.
pub async fn logout() -> impl IntoResponse {
    StatusCode::NOT_IMPLEMENTED
}
