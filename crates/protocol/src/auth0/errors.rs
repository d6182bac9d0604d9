//! Error bodies of Auth0's Management API and Authentication API.

use serde::{Deserialize, Serialize};

/// A Management API error body, e.g. `{"statusCode":404,"error":"Not Found","message":"...","errorCode":"inexistent_user"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MgmtErrorBody {
    /// The HTTP status repeated in the body.
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    /// The status's reason phrase, e.g. `Not Found`.
    pub error: String,
    /// Human-readable message.
    pub message: String,
    /// Machine-readable code, present on many errors.
    #[serde(rename = "errorCode", default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

/// An Authentication API (OAuth 2.0) error body: `{"error": "...", "error_description": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthErrorBody {
    /// RFC 6749 error code such as `invalid_grant`.
    pub error: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// Link to documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl OAuthErrorBody {
    /// `error` when MFA is required; the body then also carries an `mfa_token` (see [`MfaRequiredErrorBody`]).
    pub const MFA_REQUIRED: &'static str = "mfa_required";

    /// Builds a body with a description and no `error_uri`.
    pub fn new(error: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            error_description: Some(description.into()),
            error_uri: None,
        }
    }

    /// Whether this is `mfa_required`; read the body again as [`MfaRequiredErrorBody`] for its token.
    pub fn is_mfa_required(&self) -> bool {
        self.error == Self::MFA_REQUIRED
    }
}

/// One factor named in `mfa_requirements`, e.g. `{"type":"otp"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaFactorRequirement {
    /// The factor type (`otp`, `oob`, `recovery-code`, ...), kept as a string.
    #[serde(rename = "type")]
    pub kind: String,
}

/// What the user must do to satisfy MFA: challenge an existing factor or enroll one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaRequirements {
    /// Factors the user can be challenged with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<Vec<MfaFactorRequirement>>,
    /// Factors the user can enroll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enroll: Option<Vec<MfaFactorRequirement>>,
}

/// The `/oauth/token` error body for `mfa_required` (HTTP 403):
/// `{"error":"mfa_required","error_description":"...","mfa_token":"...","mfa_requirements":{...}}`.
///
/// A separate type from [`OAuthErrorBody`] so that body stays source-compatible; every `mfa_required` body also
/// reads as an [`OAuthErrorBody`] (the extra fields are ignored).
///
/// # Security
/// `mfa_token` lets its holder continue the login with the MFA API: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaRequiredErrorBody {
    /// Always `mfa_required`.
    pub error: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// Token for the MFA API (`/mfa/challenge`, `/mfa/authenticators`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
    /// Which factors can satisfy the requirement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_requirements: Option<MfaRequirements>,
}

impl std::fmt::Debug for MfaRequiredErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaRequiredErrorBody")
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .field("mfa_token", &self.mfa_token.as_ref().map(|_| "[redacted]"))
            .field("mfa_requirements", &self.mfa_requirements)
            .finish()
    }
}
