//! [`CommandError`]: the one error every command returns, serialized as `{ "code": ..., "message": ... }`.
//!
//! `code` is a closed set ([`ErrorCode`]) mirrored in `ui/app.js` (`ERROR_CODES`); the UI branches on it and never
//! parses `message`. A code exists only because the UI does something different for it.

use companion_client::EnrollError;
use companion_client::config::ConfigError;
use companion_client::oidc::AuthError;
use companion_client::proxy::ProxyError;
use serde::Serialize;

/// What went wrong, as the UI branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The configuration is incomplete or invalid: the UI shows the message and the support link.
    NotConfigured,
    /// Not signed in (or the session ended): the UI shows the signed-out view.
    SignedOut,
    /// Another sign-in or enrollment is already waiting for the browser.
    InProgress,
    /// The user cancelled: the UI goes back quietly.
    Cancelled,
    /// The browser step took too long.
    TimedOut,
    /// The identity provider refused the sign-in (the user declined or failed it).
    Denied,
    /// The browser could not be opened.
    Browser,
    /// The OS keyring failed.
    Keyring,
    /// Removing needs a recent MFA: the UI offers "Verify it's you" and retries.
    StepUpRequired,
    /// Removing this method would lock the user out: the UI explains.
    LastAuthenticator,
    /// The service is busy: the UI counts down `retry_after_secs` and retries.
    Busy,
    /// The method no longer exists: the UI reloads the list.
    NotFound,
    /// The name was refused (blank, too long, control characters).
    InvalidName,
    /// This kind of method is not offered by the organization.
    NotOffered,
    /// The service could not be reached or answered unexpectedly: the UI offers retry.
    Network,
    /// Anything else.
    Failed,
}

impl ErrorCode {
    /// Every code, in the order `ui/app.js` lists them.
    pub const ALL: [Self; 16] = [
        Self::NotConfigured,
        Self::SignedOut,
        Self::InProgress,
        Self::Cancelled,
        Self::TimedOut,
        Self::Denied,
        Self::Browser,
        Self::Keyring,
        Self::StepUpRequired,
        Self::LastAuthenticator,
        Self::Busy,
        Self::NotFound,
        Self::InvalidName,
        Self::NotOffered,
        Self::Network,
        Self::Failed,
    ];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::SignedOut => "signed_out",
            Self::InProgress => "in_progress",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed_out",
            Self::Denied => "denied",
            Self::Browser => "browser",
            Self::Keyring => "keyring",
            Self::StepUpRequired => "step_up_required",
            Self::LastAuthenticator => "last_authenticator",
            Self::Busy => "busy",
            Self::NotFound => "not_found",
            Self::InvalidName => "invalid_name",
            Self::NotOffered => "not_offered",
            Self::Network => "network",
            Self::Failed => "failed",
        }
    }

    /// Maps `companion-client`'s stable codes (`AuthError::code`, `ProxyError::code`, `EnrollError::code`).
    fn from_client(code: &str) -> Self {
        match code {
            "signed_out" => Self::SignedOut,
            "cancelled" => Self::Cancelled,
            "timed_out" => Self::TimedOut,
            "denied" => Self::Denied,
            "browser" => Self::Browser,
            "keyring" => Self::Keyring,
            "step_up_required" => Self::StepUpRequired,
            "last_authenticator" => Self::LastAuthenticator,
            "busy" => Self::Busy,
            "not_found" => Self::NotFound,
            "invalid_request" => Self::InvalidName,
            "not_offered" => Self::NotOffered,
            "network" | "discovery" => Self::Network,
            _ => Self::Failed,
        }
    }
}

/// The error of every command: a stable code, a user-safe message and, for `busy`, when to retry.
///
/// Built only from `companion-client` errors, whose messages never hold a token, code or verifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// What the UI branches on.
    pub code: ErrorCode,
    /// A sentence for the user (shown, never parsed).
    pub message: String,
    /// For `busy`: seconds to wait before retrying, when the service said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl CommandError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }
}

impl From<AuthError> for CommandError {
    fn from(error: AuthError) -> Self {
        Self::new(ErrorCode::from_client(error.code()), error.to_string())
    }
}

impl From<ProxyError> for CommandError {
    fn from(error: ProxyError) -> Self {
        let retry_after_secs = match &error {
            ProxyError::Busy { retry_after, .. } => retry_after.map(|wait| wait.as_secs().max(1)),
            _ => None,
        };
        Self {
            code: ErrorCode::from_client(error.code()),
            message: error.to_string(),
            retry_after_secs,
        }
    }
}

impl From<EnrollError> for CommandError {
    fn from(error: EnrollError) -> Self {
        match error {
            EnrollError::Proxy(proxy) => proxy.into(),
            other => Self::new(ErrorCode::from_client(other.code()), other.to_string()),
        }
    }
}

impl From<&ConfigError> for CommandError {
    fn from(error: &ConfigError) -> Self {
        Self::new(ErrorCode::NotConfigured, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_spelling() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).expect("a code serializes"),
                serde_json::json!(code.as_str()),
                "{code:?}"
            );
        }
    }

    #[test]
    fn the_ui_mirrors_the_closed_set_of_codes() {
        let app_js = include_str!("../../ui/app.js");
        let start = app_js
            .find("const ERROR_CODES = [")
            .expect("ui/app.js declares ERROR_CODES");
        let end = start
            + app_js[start..]
                .find("];")
                .expect("ERROR_CODES is a closed array");
        let listed: Vec<&str> = app_js[start..end].split('"').skip(1).step_by(2).collect();
        let ours: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(
            listed, ours,
            "ui/app.js ERROR_CODES must list exactly the Rust codes, in order"
        );
    }

    #[test]
    fn busy_carries_the_retry_delay() {
        let error = CommandError::from(ProxyError::Busy {
            retry_after: Some(std::time::Duration::from_secs(7)),
            message: "rate limited".into(),
        });
        let json = serde_json::to_value(&error).expect("serializes");
        assert_eq!(json["code"], "busy", "code: {json}");
        assert_eq!(json["retry_after_secs"], 7, "retry delay: {json}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "message: {json}"
        );
    }

    #[test]
    fn client_codes_map_onto_the_ui_codes() {
        let step_up = CommandError::from(ProxyError::StepUpRequired {
            max_age: Some(300),
            message: "verify".into(),
        });
        assert_eq!(step_up.code, ErrorCode::StepUpRequired, "step-up");
        let last = CommandError::from(ProxyError::LastAuthenticator {
            message: "last".into(),
        });
        assert_eq!(last.code, ErrorCode::LastAuthenticator, "last method");
        assert_eq!(
            CommandError::from(ProxyError::SignedOut).code,
            ErrorCode::SignedOut,
            "signed out"
        );
        assert_eq!(
            CommandError::from(EnrollError::Cancelled).code,
            ErrorCode::Cancelled,
            "cancelled enrollment"
        );
        assert_eq!(
            CommandError::from(AuthError::SignedOut).code,
            ErrorCode::SignedOut,
            "auth signed out"
        );
    }
}
