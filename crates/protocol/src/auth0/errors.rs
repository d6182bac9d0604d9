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
