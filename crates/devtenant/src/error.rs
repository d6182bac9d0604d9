//! Error responses in Auth0's shapes: OAuth 2.0 bodies for the Authentication API, `statusCode` bodies for the
//! Management API, and HTML pages for the hosted login and enrollment pages.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use companion_protocol::auth0::{MgmtErrorBody, OAuthErrorBody};

use crate::pages;

/// An Authentication API error: `{"error", "error_description"}` with Auth0's status.
#[derive(Debug, Clone)]
pub struct OAuthError {
    /// HTTP status.
    pub status: StatusCode,
    /// RFC 6749 error code.
    pub error: &'static str,
    /// Human-readable description.
    pub description: String,
}

impl OAuthError {
    /// An error with `status`, `error` and `description`.
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 403 `invalid_grant`, as Auth0 answers for bad codes, verifiers and refresh tokens.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "invalid_grant", description)
    }

    /// 401 `invalid_client`.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    /// 403 `unauthorized_client`.
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "unauthorized_client", description)
    }

    /// 403 `access_denied`.
    pub fn access_denied(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "access_denied", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = OAuthErrorBody {
            error: self.error.to_owned(),
            error_description: Some(self.description),
            error_uri: None,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// A Management API error: `{"statusCode", "error", "message", "errorCode"?}`.
#[derive(Debug, Clone)]
pub struct MgmtError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message.
    pub message: String,
    /// Machine-readable code.
    pub error_code: Option<&'static str>,
}

impl MgmtError {
    /// An error with `status`, `message` and an optional `errorCode`.
    pub fn new(
        status: StatusCode,
        message: impl Into<String>,
        error_code: Option<&'static str>,
    ) -> Self {
        Self {
            status,
            message: message.into(),
            error_code,
        }
    }

    /// 400 `invalid_body` / `invalid_query_string` / `invalid_uri`.
    pub fn bad_request(message: impl Into<String>, error_code: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message, Some(error_code))
    }

    /// 401 with Auth0's message for a bad bearer token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message, None)
    }

    /// 403 `insufficient_scope`, naming the scopes that would do.
    pub fn insufficient_scope(expected: &[&str]) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            format!(
                "Insufficient scope, expected any of: {}",
                expected.join(",")
            ),
            Some("insufficient_scope"),
        )
    }

    /// 404 with an Auth0 message and code.
    pub fn not_found(message: impl Into<String>, error_code: &'static str) -> Self {
        Self::new(StatusCode::NOT_FOUND, message, Some(error_code))
    }

    /// 429 as Auth0 answers it.
    pub fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset headers.",
            Some("too_many_requests"),
        )
    }
}

impl IntoResponse for MgmtError {
    fn into_response(self) -> Response {
        let body = MgmtErrorBody {
            status_code: self.status.as_u16(),
            error: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            message: self.message,
            error_code: self.error_code.map(str::to_owned),
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// An error shown to a person on a hosted page; never a panic, never a secret.
#[derive(Debug, Clone)]
pub struct PageError {
    /// HTTP status.
    pub status: StatusCode,
    /// Page heading.
    pub title: String,
    /// One or two sentences saying what happened and what to do.
    pub message: String,
}

impl PageError {
    /// A 400 page.
    pub fn bad_request(title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            title: title.into(),
            message: message.into(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = format!(
            r#"<h1>{}</h1><p class="error" role="alert">{}</p>"#,
            pages::escape(&self.title),
            pages::escape(&self.message)
        );
        (self.status, Html(pages::layout(&self.title, &body))).into_response()
    }
}
