//! The audit trail: one structured record per attempted change (target `audit`), naming who (`sub`), what
//! (`action`, `method_id` or `enrollment_type`), the result, and the request id. Never a token or a ticket URL.

use companion_protocol::ids::{MethodId, UserId};

use crate::error::ApiError;

/// What was attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Rename a method.
    Rename,
    /// Remove a method.
    Remove,
    /// Create an enrollment ticket.
    Enroll,
}

impl Action {
    /// The action's name in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rename => "rename_authenticator",
            Self::Remove => "remove_authenticator",
            Self::Enroll => "create_enrollment_ticket",
        }
    }
}

/// Writes one audit record for `action` by `sub` on `target`, with its outcome.
pub fn record<T>(
    sub: &UserId,
    action: Action,
    target: Option<&MethodId>,
    detail: Option<&str>,
    result: &Result<T, ApiError>,
    request_id: &str,
) {
    let method_id = target.map(MethodId::as_str);
    match result {
        Ok(_) => tracing::info!(
            target: "audit",
            sub = sub.as_str(),
            action = action.as_str(),
            method_id,
            detail,
            result = "success",
            request_id,
            "audit"
        ),
        Err(error) => tracing::info!(
            target: "audit",
            sub = sub.as_str(),
            action = action.as_str(),
            method_id,
            detail,
            result = "refused",
            status = error.status().as_u16(),
            error = %error.code(),
            request_id,
            "audit"
        ),
    }
}
