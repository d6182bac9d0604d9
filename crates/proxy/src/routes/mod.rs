//! The HTTP routes, grouped by resource: [`me`] (the caller's authenticators and enrollments) and [`ops`]
//! (health, readiness, metrics).

pub mod me;
pub mod ops;

use axum::http::HeaderMap;

/// The request id the request-id layer assigned (or the client sent), for audit records.
pub(crate) fn request_id(headers: &HeaderMap) -> &str {
    headers
        .get(crate::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
}
