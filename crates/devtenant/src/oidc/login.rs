//! The hosted login page.

use axum::http::StatusCode;
use axum::response::IntoResponse;

/// Path of the login page.
pub const LOGIN_PATH: &str = "/u/login";

/// `GET /u/login`.
pub async fn page() -> impl IntoResponse {
    StatusCode::NOT_IMPLEMENTED
}

/// `POST /u/login`.
pub async fn submit() -> impl IntoResponse {
    StatusCode::NOT_IMPLEMENTED
}
