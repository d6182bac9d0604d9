//! Typed calls to the backend proxy (design.md §3) and its errors decoded into [`ProxyError`].
//!
//! [`ProxyClient`] is the bare HTTP layer (it takes an access token per call); [`crate::Companion`] adds the
//! session (tokens, one retry after a rejected token) and enrollment.

use std::time::Duration;

use companion_protocol::api::{
    ApiErrorBody, ApiErrorCode, Authenticator, AuthenticatorList, EnrollmentRequest,
    EnrollmentResponse, EnrollmentType, RenameRequest, challenge,
};
use openidconnect::AccessToken;
use reqwest::{Method, StatusCode, header};
use url::Url;

use crate::oidc::AuthError;

/// Why a proxy call failed; the UI branches on the variant, never on the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// A recent MFA is needed: sign in again with step-up, then retry.
    #[error("{message}")]
    StepUpRequired {
        /// The `max_age` of the challenge, in seconds.
        max_age: Option<u64>,
        /// The proxy's message.
        message: String,
    },
    /// Removing this method would leave no way to complete MFA.
    #[error("{message}")]
    LastAuthenticator {
        /// The proxy's message.
        message: String,
    },
    /// The proxy (or Auth0 behind it) is busy or unreachable; retry later.
    #[error("the service is busy or unavailable{}: {message}", retry_after.map(|d| format!(", retry in {}s", d.as_secs())).unwrap_or_default())]
    Busy {
        /// How long to wait, from `Retry-After`.
        retry_after: Option<Duration>,
        /// The proxy's message.
        message: String,
    },
    /// No such authenticator for this user.
    #[error("{message}")]
    NotFound {
        /// The proxy's message.
        message: String,
    },
    /// The access token was refused (after one refresh and retry): sign in again.
    #[error("your session is no longer accepted; sign in again")]
    InvalidToken,
    /// Not signed in, or the sign-in cannot be renewed.
    #[error("not signed in; run the sign-in first")]
    SignedOut,
    /// The request was refused as invalid (bad name, bad id, ...).
    #[error("{message}")]
    InvalidRequest {
        /// The proxy's code (`invalid_request`, `invalid_id`, ...).
        code: ApiErrorCode,
        /// The proxy's message.
        message: String,
    },
    /// Any other error answer.
    #[error("the proxy answered {status}: {message}")]
    Upstream {
        /// The HTTP status.
        status: u16,
        /// The proxy's message, or a generic one.
        message: String,
    },
    /// The proxy could not be reached.
    #[error("cannot reach the proxy: {reason}")]
    Transport {
        /// What failed.
        reason: String,
    },
    /// The proxy's answer is not what the contract says.
    #[error("unexpected answer from the proxy: {reason}")]
    Decode {
        /// What is wrong.
        reason: String,
    },
    /// Getting an access token failed for another reason than being signed out.
    #[error(transparent)]
    Auth(AuthError),
}

impl ProxyError {
    /// A stable machine-readable code for UIs: `step_up_required`, `last_authenticator`, `busy`, `not_found`,
    /// `signed_out`, `invalid_request`, `network`, or the session's [`AuthError::code`].
    pub fn code(&self) -> &'static str {
        match self {
            Self::StepUpRequired { .. } => "step_up_required",
            Self::LastAuthenticator { .. } => "last_authenticator",
            Self::Busy { .. } => "busy",
            Self::NotFound { .. } => "not_found",
            Self::InvalidToken | Self::SignedOut => "signed_out",
            Self::InvalidRequest { .. } => "invalid_request",
            Self::Upstream { .. } | Self::Transport { .. } | Self::Decode { .. } => "network",
            Self::Auth(error) => error.code(),
        }
    }
}

impl From<AuthError> for ProxyError {
    fn from(error: AuthError) -> Self {
        if error.is_session_ended() {
            Self::SignedOut
        } else {
            Self::Auth(error)
        }
    }
}

/// The proxy's HTTP API.
#[derive(Debug, Clone)]
pub struct ProxyClient {
    http: reqwest::Client,
    base: Url,
}

impl ProxyClient {
    /// A client for the proxy at `base` (its path, if any, is kept as a prefix).
    pub fn new(http: reqwest::Client, base: Url) -> Self {
        Self { http, base }
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        token: &AccessToken,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response, ProxyError> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(token.secret())
            .header(header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ProxyError::Transport { reason: chain(&e) })?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(decode_error(response).await)
        }
    }

    /// `GET /v1/me/authenticators`, the body exactly as the proxy sent it (checked to match the contract).
    ///
    /// # Errors
    /// [`ProxyError`].
    pub async fn list_raw(&self, token: &AccessToken) -> Result<String, ProxyError> {
        let url = self.url(&["v1", "me", "authenticators"]);
        let response = self.send(Method::GET, url, token, None).await?;
        let text = response
            .text()
            .await
            .map_err(|e| ProxyError::Transport { reason: chain(&e) })?;
        serde_json::from_str::<AuthenticatorList>(&text).map_err(|e| ProxyError::Decode {
            reason: e.to_string(),
        })?;
        Ok(text)
    }

    /// `GET /v1/me/authenticators`.
    ///
    /// # Errors
    /// [`ProxyError`].
    pub async fn list(&self, token: &AccessToken) -> Result<AuthenticatorList, ProxyError> {
        let text = self.list_raw(token).await?;
        serde_json::from_str(&text).map_err(|e| ProxyError::Decode {
            reason: e.to_string(),
        })
    }

    /// `PATCH /v1/me/authenticators/{id}` with `{"name": ...}` (validated here first: 1..=20 characters).
    ///
    /// # Errors
    /// [`ProxyError::InvalidRequest`] for a bad name, or any other [`ProxyError`].
    pub async fn rename(
        &self,
        token: &AccessToken,
        id: &str,
        name: &str,
    ) -> Result<Authenticator, ProxyError> {
        let request = RenameRequest::new(name).map_err(|e| ProxyError::InvalidRequest {
            code: ApiErrorCode::InvalidRequest,
            message: e.to_string(),
        })?;
        let body = serde_json::to_value(&request).map_err(|e| ProxyError::Decode {
            reason: e.to_string(),
        })?;
        let url = self.url(&["v1", "me", "authenticators", id]);
        let response = self.send(Method::PATCH, url, token, Some(body)).await?;
        response
            .json()
            .await
            .map_err(|e| ProxyError::Decode { reason: chain(&e) })
    }

    /// `DELETE /v1/me/authenticators/{id}`.
    ///
    /// # Errors
    /// [`ProxyError::StepUpRequired`], [`ProxyError::LastAuthenticator`], [`ProxyError::NotFound`], ...
    pub async fn remove(&self, token: &AccessToken, id: &str) -> Result<(), ProxyError> {
        let url = self.url(&["v1", "me", "authenticators", id]);
        self.send(Method::DELETE, url, token, None).await?;
        Ok(())
    }

    /// `POST /v1/me/enrollments`.
    ///
    /// # Errors
    /// [`ProxyError::StepUpRequired`] when the user already has MFA and it is not recent, or any other.
    pub async fn create_enrollment(
        &self,
        token: &AccessToken,
        kind: EnrollmentType,
    ) -> Result<EnrollmentResponse, ProxyError> {
        let body =
            serde_json::to_value(EnrollmentRequest { kind }).map_err(|e| ProxyError::Decode {
                reason: e.to_string(),
            })?;
        let url = self.url(&["v1", "me", "enrollments"]);
        let response = self.send(Method::POST, url, token, Some(body)).await?;
        response
            .json()
            .await
            .map_err(|e| ProxyError::Decode { reason: chain(&e) })
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Turns an error response into a [`ProxyError`].
pub async fn decode_error(response: reqwest::Response) -> ProxyError {
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .and_then(challenge::parse_bearer);
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await.ok();
    let body: Option<ApiErrorBody> = body.as_deref().and_then(|b| serde_json::from_slice(b).ok());
    classify(status, body, challenge, retry_after)
}

fn classify(
    status: StatusCode,
    body: Option<ApiErrorBody>,
    challenge: Option<challenge::BearerChallenge>,
    retry_after: Option<Duration>,
) -> ProxyError {
    let message = body
        .as_ref()
        .map(|b| b.message.clone())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let code = body.map(|b| b.error);
    let step_up = challenge
        .as_ref()
        .is_some_and(challenge::BearerChallenge::is_step_up);
    if step_up || code == Some(ApiErrorCode::StepUpRequired) {
        return ProxyError::StepUpRequired {
            max_age: challenge.and_then(|c| c.max_age),
            message,
        };
    }
    match (status.as_u16(), code) {
        (_, Some(ApiErrorCode::InvalidToken)) | (401, _) => ProxyError::InvalidToken,
        (_, Some(ApiErrorCode::LastAuthenticator)) => ProxyError::LastAuthenticator { message },
        (_, Some(ApiErrorCode::NotFound)) | (404, None) => ProxyError::NotFound { message },
        (_, Some(ApiErrorCode::UpstreamUnavailable)) | (503 | 429, _) => ProxyError::Busy {
            retry_after,
            message,
        },
        (_, Some(code @ (ApiErrorCode::InvalidRequest | ApiErrorCode::InvalidId))) => {
            ProxyError::InvalidRequest { code, message }
        }
        (400, code) => ProxyError::InvalidRequest {
            code: code.unwrap_or(ApiErrorCode::InvalidRequest),
            message,
        },
        (status, _) => ProxyError::Upstream { status, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: ApiErrorCode) -> Option<ApiErrorBody> {
        Some(ApiErrorBody::new(code, "m"))
    }

    #[test]
    fn errors_are_classified_by_code_and_status() {
        let step_up = challenge::parse_bearer(&challenge::step_up(300));
        assert!(matches!(
            classify(
                StatusCode::FORBIDDEN,
                body(ApiErrorCode::StepUpRequired),
                step_up,
                None
            ),
            ProxyError::StepUpRequired {
                max_age: Some(300),
                ..
            }
        ));
        assert!(matches!(
            classify(
                StatusCode::UNAUTHORIZED,
                body(ApiErrorCode::InvalidToken),
                None,
                None
            ),
            ProxyError::InvalidToken
        ));
        assert!(matches!(
            classify(
                StatusCode::CONFLICT,
                body(ApiErrorCode::LastAuthenticator),
                None,
                None
            ),
            ProxyError::LastAuthenticator { .. }
        ));
        assert!(matches!(
            classify(
                StatusCode::NOT_FOUND,
                body(ApiErrorCode::NotFound),
                None,
                None
            ),
            ProxyError::NotFound { .. }
        ));
        assert!(matches!(
            classify(
                StatusCode::SERVICE_UNAVAILABLE,
                body(ApiErrorCode::UpstreamUnavailable),
                None,
                Some(Duration::from_secs(7))
            ),
            ProxyError::Busy { retry_after: Some(d), .. } if d.as_secs() == 7
        ));
        assert!(matches!(
            classify(
                StatusCode::BAD_REQUEST,
                body(ApiErrorCode::InvalidId),
                None,
                None
            ),
            ProxyError::InvalidRequest {
                code: ApiErrorCode::InvalidId,
                ..
            }
        ));
        assert!(matches!(
            classify(StatusCode::INTERNAL_SERVER_ERROR, None, None, None),
            ProxyError::Upstream { status: 500, .. }
        ));
        assert!(matches!(
            classify(
                StatusCode::BAD_GATEWAY,
                body(ApiErrorCode::Unknown("future".into())),
                None,
                None
            ),
            ProxyError::Upstream { status: 502, .. }
        ));
    }

    #[test]
    fn codes_are_stable() {
        let step_up = classify(
            StatusCode::FORBIDDEN,
            body(ApiErrorCode::StepUpRequired),
            None,
            None,
        );
        assert_eq!(step_up.code(), "step_up_required");
        assert_eq!(ProxyError::InvalidToken.code(), "signed_out");
        assert_eq!(ProxyError::from(AuthError::SignedOut).code(), "signed_out");
        assert_eq!(
            ProxyError::from(AuthError::Loopback(
                crate::loopback::LoopbackError::Cancelled
            ))
            .code(),
            "cancelled"
        );
    }

    #[test]
    fn ids_are_percent_encoded_into_one_segment() {
        let client = ProxyClient::new(
            reqwest::Client::builder().build().unwrap(),
            Url::parse("https://proxy.example/base/").unwrap(),
        );
        let url = client.url(&["v1", "me", "authenticators", "webauthn-roaming|dev_A/B?c"]);
        assert_eq!(
            url.as_str(),
            "https://proxy.example/base/v1/me/authenticators/webauthn-roaming|dev_A%2FB%3Fc"
        );
    }
}
