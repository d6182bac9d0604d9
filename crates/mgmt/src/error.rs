//! Errors of the Management API client.
//!
//! Messages name what failed and never contain tokens, client secrets or request bodies.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use companion_protocol::auth0::{MgmtErrorBody, OAuthErrorBody};

/// The Management API operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `GET /users/{id}/authentication-methods`.
    ListMethods,
    /// `GET /users/{id}/authentication-methods/{method_id}`.
    GetMethod,
    /// `PATCH /users/{id}/authentication-methods/{method_id}`.
    RenameMethod,
    /// `DELETE /users/{id}/authentication-methods/{method_id}`.
    DeleteMethod,
    /// `POST /guardian/enrollments/ticket`.
    CreateEnrollmentTicket,
    /// Any other call, made through [`MgmtClient::request_json`](crate::MgmtClient::request_json) and named by
    /// its caller (e.g. `create client`).
    Other(&'static OtherOperation),
}

/// A call made through [`MgmtClient::request_json`](crate::MgmtClient::request_json); declare one `static` per call.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct OtherOperation {
    /// What the call does, for errors, logs and metrics (e.g. `create client`).
    pub name: &'static str,
    /// Whether it may be retried after an ambiguous failure (false for POSTs that create something).
    pub idempotent: bool,
}

impl Operation {
    /// A short name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ListMethods => "list authentication methods",
            Self::GetMethod => "get authentication method",
            Self::RenameMethod => "rename authentication method",
            Self::DeleteMethod => "delete authentication method",
            Self::CreateEnrollmentTicket => "create enrollment ticket",
            Self::Other(other) => other.name,
        }
    }

    /// Whether repeating the request cannot change the outcome, so it may be retried after an ambiguous failure.
    ///
    /// GET and DELETE are idempotent by HTTP semantics. The rename PATCH sets the name to a fixed value, so sending
    /// it twice leaves the same state: it is retried too. Creating an enrollment ticket is not idempotent (each POST
    /// mints a new single-use ticket), so it is never retried after the request may have reached the server.
    pub fn is_idempotent(self) -> bool {
        match self {
            Self::CreateEnrollmentTicket => false,
            Self::Other(other) => other.idempotent,
            Self::ListMethods | Self::GetMethod | Self::RenameMethod | Self::DeleteMethod => true,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a failed token request is worth trying again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// Network error, timeout, 5xx or 429: it may work on a later try.
    Transient,
    /// Rejected credentials (401/403, `invalid_client`, `access_denied`, ...) or a malformed response: retrying
    /// without a configuration change will not help.
    Permanent,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
        })
    }
}

/// A failed client-credentials token request. Cheap to clone: one failure is shared by every caller that waited
/// for the same single-flight request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind} failure: {reason}{}", describe_status(*.status, .oauth.as_ref()))]
pub struct TokenRequestError {
    kind: FailureKind,
    reason: TokenFailureReason,
    status: Option<u16>,
    oauth: Option<OAuthErrorBody>,
    retry_after: Option<Duration>,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// What went wrong with a token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenFailureReason {
    /// The request timed out.
    Timeout,
    /// The connection failed or broke.
    Transport,
    /// The token endpoint answered with an error status.
    Status,
    /// The token endpoint rate-limited us beyond the wait budget.
    RateLimited,
    /// The response was not a token response.
    Decode,
}

impl fmt::Display for TokenFailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out",
            Self::Transport => "connection failed",
            Self::Status => "rejected by the token endpoint",
            Self::RateLimited => "rate limited by the token endpoint",
            Self::Decode => "malformed token response",
        })
    }
}

/// ` (status 401, invalid_client)`: the status and OAuth error code only (never the description, which is free text).
fn describe_status(status: Option<u16>, oauth: Option<&OAuthErrorBody>) -> String {
    match (status, oauth) {
        (Some(status), Some(body)) => format!(" (status {status}, {})", body.error),
        (Some(status), None) => format!(" (status {status})"),
        _ => String::new(),
    }
}

impl TokenRequestError {
    pub(crate) fn new(kind: FailureKind, reason: TokenFailureReason) -> Self {
        Self {
            kind,
            reason,
            status: None,
            oauth: None,
            retry_after: None,
            source: None,
        }
    }

    pub(crate) fn with_status(mut self, status: u16, oauth: Option<OAuthErrorBody>) -> Self {
        self.status = Some(status);
        self.oauth = oauth;
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Transient or permanent.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// Whether a later try may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == FailureKind::Transient
    }

    /// What went wrong.
    pub fn reason(&self) -> TokenFailureReason {
        self.reason
    }

    /// The HTTP status of the token endpoint's answer, if it answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The OAuth error body (`invalid_client`, `access_denied`, ...), if the endpoint sent one.
    pub fn oauth_error(&self) -> Option<&OAuthErrorBody> {
        self.oauth.as_ref()
    }

    /// How long the token endpoint asked us to wait, when it rate-limited us.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The tenant URL is not `https://` (or `http://` on a loopback host), or has parts a base URL cannot have.
    #[error("tenant url {url} is not allowed: {reason}")]
    TenantUrl {
        /// The URL as given (it holds no secret: user info is refused before this is built).
        url: String,
        /// Why.
        reason: &'static str,
    },
    /// The client id is empty.
    #[error("client id is empty")]
    EmptyClientId,
    /// The extra CA file could not be read.
    #[error("cannot read extra CA file {path}")]
    CaFileRead {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The extra CA file holds no usable PEM certificate.
    #[error("extra CA file {path} holds no PEM certificate")]
    CaFileInvalid {
        /// The file.
        path: std::path::PathBuf,
        /// The parse error, if any.
        #[source]
        source: Option<reqwest::Error>,
    },
    /// A setting is out of range.
    #[error("invalid setting {name}: {reason}")]
    Setting {
        /// The setting's name.
        name: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the http client")]
    HttpClient(#[source] reqwest::Error),
}

/// A failed Management API call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MgmtError {
    /// The client's configuration is invalid.
    #[error("invalid management client configuration")]
    InvalidConfig(#[from] ConfigError),
    /// An id is empty or a dot segment, so it cannot be placed in a path. No request was sent.
    #[error("{op}: invalid {what} id")]
    InvalidId {
        /// The operation.
        op: Operation,
        /// `user` or `method`.
        what: &'static str,
    },
    /// A raw path given to [`MgmtClient::request_json`](crate::MgmtClient::request_json) does not start with a
    /// single `/`. No request was sent.
    #[error("{op}: invalid management api path")]
    InvalidPath {
        /// The operation.
        op: Operation,
    },
    /// The Management API token could not be obtained.
    #[error("management api token request failed")]
    TokenRequest(#[source] TokenRequestError),
    /// The Management API rejected our token even after one refresh.
    #[error("{op}: unauthorized by the management api")]
    Unauthorized {
        /// The operation.
        op: Operation,
        /// Auth0's error body, when present.
        body: Option<MgmtErrorBody>,
    },
    /// The Management API refused the call (missing scope, or an entity limit).
    #[error("{op}: forbidden by the management api: {message}")]
    Forbidden {
        /// The operation.
        op: Operation,
        /// Auth0's message, e.g. `Insufficient scope, expected any of: read:authentication_methods`.
        message: String,
        /// Auth0's error body, when present.
        body: Option<MgmtErrorBody>,
    },
    /// The user or method does not exist.
    #[error("{op}: not found")]
    NotFound {
        /// The operation.
        op: Operation,
        /// Auth0's error body, when present.
        body: Option<MgmtErrorBody>,
    },
    /// The Management API refused the request as invalid (400, 409, 422, ...).
    #[error("{op}: rejected by the management api with status {status}")]
    Rejected {
        /// The operation.
        op: Operation,
        /// The HTTP status.
        status: u16,
        /// Auth0's error body, when present.
        body: Option<MgmtErrorBody>,
    },
    /// Rate limited beyond the wait budget: try again after `retry_after`.
    #[error("{op}: management api busy, retry after {}s", retry_after.as_secs())]
    Busy {
        /// The operation.
        op: Operation,
        /// How long to wait, in whole seconds (at least one).
        retry_after: Duration,
    },
    /// The Management API failed (5xx, or a status this client does not expect), after any retries.
    #[error("{op}: management api failed with status {status}")]
    Upstream {
        /// The operation.
        op: Operation,
        /// The HTTP status.
        status: u16,
        /// Auth0's error body, when present.
        body: Option<MgmtErrorBody>,
    },
    /// The call timed out, after any retries.
    #[error("{op}: management api request timed out")]
    Timeout {
        /// The operation.
        op: Operation,
    },
    /// The connection failed, after any retries.
    #[error("{op}: management api connection failed")]
    Transport {
        /// The operation.
        op: Operation,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The response body was not what the Management API documents.
    #[error("{op}: cannot decode the management api response")]
    Decode {
        /// The operation.
        op: Operation,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The list kept returning pages beyond any plausible number of methods.
    #[error("{op}: too many pages")]
    TooManyPages {
        /// The operation.
        op: Operation,
    },
}

impl MgmtError {
    /// Whether the same call may succeed later without any change (network, timeout, 5xx, 429, transient token
    /// failure).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::TokenRequest(error) => error.is_transient(),
            Self::Busy { .. } | Self::Timeout { .. } | Self::Transport { .. } => true,
            Self::Upstream { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The operation that failed, when one was under way (not for configuration and token errors).
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Self::InvalidId { op, .. }
            | Self::InvalidPath { op }
            | Self::Unauthorized { op, .. }
            | Self::Forbidden { op, .. }
            | Self::NotFound { op, .. }
            | Self::Rejected { op, .. }
            | Self::Busy { op, .. }
            | Self::Upstream { op, .. }
            | Self::Timeout { op }
            | Self::Transport { op, .. }
            | Self::Decode { op, .. }
            | Self::TooManyPages { op } => Some(*op),
            Self::InvalidConfig(_) | Self::TokenRequest(_) => None,
        }
    }

    /// Auth0's error body, when the Management API sent one.
    pub fn body(&self) -> Option<&MgmtErrorBody> {
        match self {
            Self::Unauthorized { body, .. }
            | Self::Forbidden { body, .. }
            | Self::NotFound { body, .. }
            | Self::Rejected { body, .. }
            | Self::Upstream { body, .. } => body.as_ref(),
            _ => None,
        }
    }

    /// How long to wait before trying again, when the Management API said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Busy { retry_after, .. } => Some(*retry_after),
            Self::TokenRequest(error) => error.retry_after(),
            _ => None,
        }
    }
}

impl From<TokenRequestError> for MgmtError {
    fn from(error: TokenRequestError) -> Self {
        Self::TokenRequest(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn token_errors_name_the_status_and_code_but_not_the_description() {
        let error = MgmtError::from(
            TokenRequestError::new(FailureKind::Permanent, TokenFailureReason::Status).with_status(
                401,
                Some(OAuthErrorBody {
                    error: "invalid_client".to_owned(),
                    error_description: Some("free text that could echo anything".to_owned()),
                    error_uri: None,
                }),
            ),
        );
        assert_eq!(
            chain(&error),
            "management api token request failed: permanent failure: rejected by the token endpoint \
             (status 401, invalid_client)"
        );
        assert!(error.operation().is_none());
        let timeout = TokenRequestError::new(FailureKind::Transient, TokenFailureReason::Timeout);
        assert_eq!(timeout.to_string(), "transient failure: timed out");
    }

    #[test]
    fn management_errors_name_the_operation() {
        let error = MgmtError::Busy {
            op: Operation::DeleteMethod,
            retry_after: Duration::from_secs(7),
        };
        assert_eq!(
            error.to_string(),
            "delete authentication method: management api busy, retry after 7s"
        );
        assert_eq!(error.operation(), Some(Operation::DeleteMethod));
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        assert!(error.is_transient());
        let error = MgmtError::NotFound {
            op: Operation::GetMethod,
            body: None,
        };
        assert_eq!(error.to_string(), "get authentication method: not found");
        assert!(!error.is_transient());
    }

    #[test]
    fn only_ticket_creation_is_not_idempotent() {
        assert!(Operation::ListMethods.is_idempotent());
        assert!(Operation::GetMethod.is_idempotent());
        assert!(Operation::RenameMethod.is_idempotent());
        assert!(Operation::DeleteMethod.is_idempotent());
        assert!(!Operation::CreateEnrollmentTicket.is_idempotent());
    }
}
