//! [`ApiError`]: every error the proxy answers with, its single status mapping, and its JSON body.
//!
//! 4xx answers carry a user-safe message. 5xx answers carry a generic message; the real cause travels in an
//! [`ErrorDetail`] response extension that the logging middleware writes inside the request's span.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use companion_mgmt::MgmtError;
use companion_protocol::api::{ApiErrorBody, ApiErrorCode, challenge};
use companion_protocol::ids::IdError;

use crate::auth::AuthError;

/// `Retry-After` sent when Auth0 failed without saying how long to wait.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The cause of a 5xx, for the logs only.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

/// An error answer of the proxy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    MissingToken,
    /// The bearer token was refused.
    #[error("invalid token: {0}")]
    InvalidToken(#[source] AuthError),
    /// The request body is not acceptable.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request body exceeds the size limit.
    #[error("request body too large")]
    BodyTooLarge,
    /// The authenticator id in the path is not a valid id.
    #[error("invalid authenticator id: {0}")]
    InvalidId(#[source] IdError),
    /// The authenticator is not one of the caller's, or does not exist.
    #[error("no such authenticator")]
    NotFound,
    /// No such route.
    #[error("no such route")]
    NoRoute,
    /// A recent MFA is needed.
    #[error("step-up authentication required")]
    StepUpRequired {
        /// The step-up window in seconds, echoed in the challenge's `max_age`.
        max_age: u64,
    },
    /// Removing the authenticator would leave no method able to complete MFA.
    #[error("last authenticator")]
    LastAuthenticator,
    /// Auth0 is unavailable or rate limiting us.
    #[error("upstream unavailable: {detail}")]
    UpstreamUnavailable {
        /// When to try again.
        retry_after: Duration,
        /// What failed, for the logs.
        detail: String,
    },
    /// An unexpected failure; the detail is only logged.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error: the one place that decides it.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(AuthError::Rejected(_)) => {
                StatusCode::UNAUTHORIZED
            }
            Self::InvalidToken(AuthError::KeysUnavailable) => StatusCode::SERVICE_UNAVAILABLE,
            Self::InvalidRequest(_) | Self::InvalidId(_) => StatusCode::BAD_REQUEST,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound | Self::NoRoute => StatusCode::NOT_FOUND,
            Self::StepUpRequired { .. } => StatusCode::FORBIDDEN,
            Self::LastAuthenticator => StatusCode::CONFLICT,
            Self::UpstreamUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error code of the body.
    pub fn code(&self) -> ApiErrorCode {
        match self {
            Self::MissingToken | Self::InvalidToken(AuthError::Rejected(_)) => {
                ApiErrorCode::InvalidToken
            }
            Self::InvalidToken(AuthError::KeysUnavailable) | Self::UpstreamUnavailable { .. } => {
                ApiErrorCode::UpstreamUnavailable
            }
            Self::InvalidRequest(_) | Self::BodyTooLarge => ApiErrorCode::InvalidRequest,
            Self::InvalidId(_) => ApiErrorCode::InvalidId,
            Self::NotFound | Self::NoRoute => ApiErrorCode::NotFound,
            Self::StepUpRequired { .. } => ApiErrorCode::StepUpRequired,
            Self::LastAuthenticator => ApiErrorCode::LastAuthenticator,
            Self::Internal(_) => ApiErrorCode::Internal,
        }
    }

    fn message(&self) -> String {
        match self {
            Self::MissingToken => "an Authorization: Bearer access token is required".to_owned(),
            Self::InvalidToken(AuthError::Rejected(reason)) => {
                format!("the access token was rejected: {reason}")
            }
            Self::InvalidToken(AuthError::KeysUnavailable) | Self::UpstreamUnavailable { .. } => {
                "the identity provider is unavailable; try again later".to_owned()
            }
            Self::InvalidRequest(message) => message.clone(),
            Self::BodyTooLarge => "the request body is too large".to_owned(),
            Self::InvalidId(error) => format!("invalid authenticator id: {error}"),
            Self::NotFound => "no such authenticator".to_owned(),
            Self::NoRoute => "no such route".to_owned(),
            Self::StepUpRequired { .. } => {
                "this change needs a recent multi-factor authentication; sign in again with MFA".to_owned()
            }
            Self::LastAuthenticator => {
                "this is your last method that can complete multi-factor authentication; add another one first"
                    .to_owned()
            }
            Self::Internal(_) => "an unexpected error occurred".to_owned(),
        }
    }

    /// Maps a Management API failure: a missing user or method is 404, transient failures (429 beyond the budget,
    /// 5xx, timeouts, refused connections, token endpoint trouble) are 503 with `Retry-After`, the rest is 500.
    pub fn from_mgmt(error: &MgmtError) -> Self {
        let detail = error_chain(error);
        match error {
            MgmtError::NotFound { .. } => Self::NotFound,
            MgmtError::Busy { retry_after, .. } => Self::UpstreamUnavailable {
                retry_after: (*retry_after).max(Duration::from_secs(1)),
                detail,
            },
            MgmtError::TokenRequest(_)
            | MgmtError::Timeout { .. }
            | MgmtError::Transport { .. }
            | MgmtError::Upstream { .. } => Self::UpstreamUnavailable {
                retry_after: error
                    .retry_after()
                    .unwrap_or(DEFAULT_RETRY_AFTER)
                    .max(Duration::from_secs(1)),
                detail,
            },
            _ => Self::Internal(detail),
        }
    }
}

/// `error` and its sources, joined with `: `.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        Self::InvalidToken(error)
    }
}

impl From<IdError> for ApiError {
    fn from(error: IdError) -> Self {
        Self::InvalidId(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ApiErrorBody::new(self.code(), self.message());
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::MissingToken => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge::BEARER),
                );
            }
            Self::InvalidToken(AuthError::Rejected(_)) => {
                if let Ok(value) = HeaderValue::from_str(&challenge::invalid_token()) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            Self::StepUpRequired { max_age } => {
                if let Ok(value) = HeaderValue::from_str(&challenge::step_up(*max_age)) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            Self::UpstreamUnavailable { retry_after, .. } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs()),
                );
            }
            Self::InvalidToken(AuthError::KeysUnavailable) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(DEFAULT_RETRY_AFTER.as_secs()),
                );
            }
            _ => {}
        }
        if status.is_server_error() {
            response
                .extensions_mut()
                .insert(ErrorDetail(self.to_string()));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Rejection;

    async fn body_of(response: Response) -> ApiErrorBody {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn statuses_match_the_protocol_codes() {
        let cases = [
            ApiError::MissingToken,
            ApiError::InvalidToken(AuthError::Rejected(Rejection::Expired)),
            ApiError::InvalidRequest("x".into()),
            ApiError::InvalidId(IdError::Empty),
            ApiError::NotFound,
            ApiError::StepUpRequired { max_age: 300 },
            ApiError::LastAuthenticator,
            ApiError::UpstreamUnavailable {
                retry_after: Duration::from_secs(7),
                detail: "boom".into(),
            },
            ApiError::Internal("secret detail".into()),
        ];
        for error in cases {
            let status = error.status();
            let response = error.into_response();
            let body = body_of(response).await;
            assert_eq!(
                body.error.http_status(),
                Some(status.as_u16()),
                "{:?} must use the status its code documents",
                body.error
            );
        }
    }

    #[tokio::test]
    async fn server_errors_hide_details_and_keep_them_in_an_extension() {
        let response = ApiError::Internal("db password=hunter2".into()).into_response();
        let detail = response.extensions().get::<ErrorDetail>().cloned();
        assert!(
            detail.unwrap().0.contains("hunter2"),
            "detail kept for logs"
        );
        let body = body_of(response).await;
        assert!(!body.message.contains("hunter2"), "body is generic");
    }

    #[tokio::test]
    async fn challenges_and_retry_after_are_set() {
        let response = ApiError::MissingToken.into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let response =
            ApiError::InvalidToken(AuthError::Rejected(Rejection::Expired)).into_response();
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer error="invalid_token""#
        );
        let response = ApiError::StepUpRequired { max_age: 300 }.into_response();
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            challenge::step_up(300)
        );
        let response = ApiError::UpstreamUnavailable {
            retry_after: Duration::from_secs(7),
            detail: String::new(),
        }
        .into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }
}
