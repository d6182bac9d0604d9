//! `GET /authorize`: validates the request and starts a login transaction.

use axum::http::StatusCode;
use axum::response::IntoResponse;

/// `GET /authorize`.
pub async fn authorize() -> impl IntoResponse {
    StatusCode::NOT_IMPLEMENTED
}
