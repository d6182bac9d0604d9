//! The hosted MFA challenge page.

use axum::http::StatusCode;
use axum::response::IntoResponse;

/// Path of the MFA page.
pub const MFA_PATH: &str = "/u/mfa";

/// `GET /u/mfa`.
pub async fn page() -> impl IntoResponse {
    StatusCode::NOT_IMPLEMENTED
}

/// `POST /u/mfa`.
pub async fn submit() -> impl IntoResponse {
    StatusCode::NOT_IMPLEMENTED
}
