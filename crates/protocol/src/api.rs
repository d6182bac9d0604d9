//! The proxy's own HTTP API (design.md §3): request and response bodies, error codes and `WWW-Authenticate` pieces.
//!
//! Serialization convention: every field of a response type is always present. Optional values that are unknown
//! serialize as JSON `null` (never omitted), lists serialize as `[]` when empty, so clients see one stable shape.
//! When reading, a missing optional field is accepted as `None` and unknown fields are ignored, so an older client
//! can read a newer proxy's responses. Request bodies are strict: unknown fields are refused.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::auth0::{MethodType, TicketFactor};
use crate::ids::MethodId;
use crate::open_enum::open_enum;

/// Route of the authenticator list (`GET`).
pub const AUTHENTICATORS_PATH: &str = "/v1/me/authenticators";
/// Route of enrollment (`POST`).
pub const ENROLLMENTS_PATH: &str = "/v1/me/enrollments";
/// Liveness route.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Readiness route.
pub const READYZ_PATH: &str = "/readyz";
/// Prometheus metrics route.
pub const METRICS_PATH: &str = "/metrics";

/// The path of one authenticator, `/v1/me/authenticators/{id}`, with the id percent-encoded (`|` as `%7C`).
pub fn authenticator_path(id: &MethodId) -> String {
    format!("{AUTHENTICATORS_PATH}/{}", id.path_segment())
}

/// Largest number of characters (Unicode scalar values) in an authenticator's name, as Auth0's `maxLength: 20`.
pub const MAX_NAME_CHARS: usize = 20;

/// One of the caller's authenticators, as `GET /v1/me/authenticators` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authenticator {
    /// Auth0's method id, e.g. `webauthn-roaming|dev_XXXXXXXXXXXXXXXX`.
    pub id: String,
    /// The Management API type; unknown future types pass through unchanged.
    #[serde(rename = "type")]
    pub kind: MethodType,
    /// The user's own label, if any.
    #[serde(default)]
    pub name: Option<String>,
    /// What the UI shows: the name, else the provider from the AAGUID, else browser/OS, else a type label.
    pub display_name: String,
    /// Creation time (RFC 3339, as Auth0 wrote it).
    pub created_at: String,
    /// Last successful use (RFC 3339), if known.
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// Whether enrollment completed.
    pub confirmed: bool,
    /// `single_device` or `multi_device` (passkeys), if known.
    #[serde(default)]
    pub device_type: Option<String>,
    /// Whether the credential is backed up (synced passkeys), if known.
    #[serde(default)]
    pub backed_up: Option<bool>,
    /// Authenticator model identifier (UUID), if known.
    #[serde(default)]
    pub aaguid: Option<String>,
    /// The authenticator's maker or product, resolved from the AAGUID, if known.
    #[serde(default)]
    pub provider: Option<String>,
    /// WebAuthn transports (`usb`, `nfc`, `ble`, `internal`, `hybrid`); empty when unknown.
    #[serde(default)]
    pub transports: Vec<String>,
    /// Whether removing it now would pass the lockout guard (another usable method remains).
    pub removable: bool,
}

/// Body of `GET /v1/me/authenticators`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticatorList {
    /// The caller's authenticators.
    pub authenticators: Vec<Authenticator>,
}

/// Why a [`RenameRequest`] is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty or only whitespace.
    Blank,
    /// The name has more than [`MAX_NAME_CHARS`] characters.
    TooLong {
        /// The maximum number of characters.
        max: usize,
    },
    /// The name contains a control character.
    ControlCharacter,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blank => f.write_str("name must not be empty"),
            Self::TooLong { max } => write!(f, "name must be at most {max} characters"),
            Self::ControlCharacter => f.write_str("name must not contain control characters"),
        }
    }
}

impl std::error::Error for NameError {}

/// Body of `PATCH /v1/me/authenticators/{id}`: `{"name": "..."}`, 1 to 20 characters.
///
/// Deserialization does not validate (so the proxy can answer `invalid_request` with a precise message); call
/// [`RenameRequest::validate`] or build it with [`RenameRequest::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    /// The new name.
    pub name: String,
}

impl RenameRequest {
    /// Builds a validated request.
    ///
    /// # Errors
    /// [`NameError`] as [`RenameRequest::validate`] reports it.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let request = Self { name: name.into() };
        request.validate()?;
        Ok(request)
    }

    /// Checks the name: not blank, at most [`MAX_NAME_CHARS`] characters, no control characters.
    /// The name is not trimmed or otherwise altered.
    ///
    /// # Errors
    /// [`NameError::Blank`], [`NameError::TooLong`] or [`NameError::ControlCharacter`].
    pub fn validate(&self) -> Result<(), NameError> {
        if self.name.trim().is_empty() {
            return Err(NameError::Blank);
        }
        if self.name.chars().count() > MAX_NAME_CHARS {
            return Err(NameError::TooLong {
                max: MAX_NAME_CHARS,
            });
        }
        if self.name.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        Ok(())
    }
}

/// The kinds of authenticator the proxy can enroll: a closed set, anything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EnrollmentType {
    /// `webauthn-platform`: this device's biometrics (Touch ID, Windows Hello).
    #[serde(rename = "webauthn-platform")]
    WebauthnPlatform,
    /// `webauthn-roaming`: a security key.
    #[serde(rename = "webauthn-roaming")]
    WebauthnRoaming,
}

impl EnrollmentType {
    /// Both kinds.
    pub const ALL: [Self; 2] = [Self::WebauthnPlatform, Self::WebauthnRoaming];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebauthnPlatform => "webauthn-platform",
            Self::WebauthnRoaming => "webauthn-roaming",
        }
    }

    /// The Auth0 enrollment-ticket `factor` for this kind.
    pub fn ticket_factor(self) -> TicketFactor {
        match self {
            Self::WebauthnPlatform => TicketFactor::WebauthnPlatform,
            Self::WebauthnRoaming => TicketFactor::WebauthnRoaming,
        }
    }

    /// The Management API method type an enrollment of this kind creates.
    pub fn method_type(self) -> MethodType {
        match self {
            Self::WebauthnPlatform => MethodType::WebauthnPlatform,
            Self::WebauthnRoaming => MethodType::WebauthnRoaming,
        }
    }
}

impl fmt::Display for EnrollmentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of `POST /v1/me/enrollments`: `{"type": "webauthn-platform" | "webauthn-roaming"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentRequest {
    /// What to enroll.
    #[serde(rename = "type")]
    pub kind: EnrollmentType,
}

/// Response of `POST /v1/me/enrollments` (201): open `ticket_url` in the system browser as-is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentResponse {
    /// What will be enrolled.
    #[serde(rename = "type")]
    pub kind: EnrollmentType,
    /// Auth0's single-use enrollment page, opaque.
    pub ticket_url: String,
    /// When the ticket stops working (RFC 3339, UTC).
    pub expires_at: String,
}

open_enum! {
    /// The `error` code of the proxy's error body; open so an older client can read a newer proxy.
    pub enum ApiErrorCode {
        /// 401: the bearer token is missing, malformed, expired, or not for this API.
        InvalidToken => "invalid_token",
        /// 400: the request body or query is invalid.
        InvalidRequest => "invalid_request",
        /// 400: the authenticator id in the path is not a valid id (no upstream call was made).
        InvalidId => "invalid_id",
        /// 404: no such authenticator for the caller.
        NotFound => "not_found",
        /// 403: a recent MFA is needed; see the `WWW-Authenticate` challenge.
        StepUpRequired => "step_up_required",
        /// 409: removing this would leave no method able to complete MFA.
        LastAuthenticator => "last_authenticator",
        /// 503: Auth0 is unreachable or rate limiting; retry after `Retry-After`.
        UpstreamUnavailable => "upstream_unavailable",
        /// 500: an unexpected error; details are only in the proxy's logs.
        Internal => "internal",
    }
}

impl ApiErrorCode {
    /// The HTTP status the proxy answers with for this code; `None` for codes this build does not know.
    pub fn http_status(&self) -> Option<u16> {
        Some(match self {
            Self::InvalidToken => 401,
            Self::InvalidRequest | Self::InvalidId => 400,
            Self::NotFound => 404,
            Self::StepUpRequired => 403,
            Self::LastAuthenticator => 409,
            Self::UpstreamUnavailable => 503,
            Self::Internal => 500,
            Self::Unknown(_) => return None,
        })
    }
}

/// The proxy's error body: `{"error": "<code>", "message": "<human text>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// Machine-readable code; clients branch on this, never on `message`.
    pub error: ApiErrorCode,
    /// Human-readable text, safe to show to the user.
    pub message: String,
}

impl ApiErrorBody {
    /// Builds an error body.
    pub fn new(error: ApiErrorCode, message: impl Into<String>) -> Self {
        Self {
            error,
            message: message.into(),
        }
    }
}

/// Pieces and builders of the `WWW-Authenticate` challenges the proxy sends (RFC 6750, RFC 9470).
pub mod challenge {
    use crate::claims::MFA_ACR;

    /// The auth scheme.
    pub const BEARER: &str = "Bearer";
    /// `error` of a 401: the token is missing, expired or invalid.
    pub const INVALID_TOKEN: &str = "invalid_token";
    /// `error` of a step-up 403 (RFC 9470).
    pub const INSUFFICIENT_USER_AUTHENTICATION: &str = "insufficient_user_authentication";
    /// The `acr_values` a step-up challenge asks for.
    pub const STEP_UP_ACR_VALUES: &str = MFA_ACR;

    /// `Bearer error="invalid_token"`, the header value of every 401.
    pub fn invalid_token() -> String {
        format!("{BEARER} error=\"{INVALID_TOKEN}\"")
    }

    /// The step-up header value: `Bearer error="insufficient_user_authentication",
    /// acr_values="http://schemas.openid.net/pape/policies/2007/06/multi-factor", max_age=<seconds>`.
    pub fn step_up(max_age_secs: u64) -> String {
        format!(
            "{BEARER} error=\"{INSUFFICIENT_USER_AUTHENTICATION}\", acr_values=\"{STEP_UP_ACR_VALUES}\", max_age={max_age_secs}"
        )
    }

    /// A parsed `Bearer` challenge, as a client reads it.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct BearerChallenge {
        /// `error`, e.g. `invalid_token` or `insufficient_user_authentication`.
        pub error: Option<String>,
        /// `error_description`.
        pub error_description: Option<String>,
        /// `acr_values` (space-separated).
        pub acr_values: Option<String>,
        /// `max_age` in seconds.
        pub max_age: Option<u64>,
        /// `scope`.
        pub scope: Option<String>,
    }

    impl BearerChallenge {
        /// Whether this challenge asks for step-up authentication.
        pub fn is_step_up(&self) -> bool {
            self.error.as_deref() == Some(INSUFFICIENT_USER_AUTHENTICATION)
        }
    }

    /// Parses one `Bearer` challenge (`Bearer k="v", k2=v2`). Returns `None` for another scheme or bad syntax.
    /// Unknown parameters are ignored; an unparsable `max_age` is treated as absent.
    pub fn parse_bearer(header: &str) -> Option<BearerChallenge> {
        let header = header.trim();
        let (scheme, mut rest) = header
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case(BEARER) {
            return None;
        }
        let mut challenge = BearerChallenge::default();
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
            if rest.is_empty() {
                break;
            }
            let (key, after_key) = rest.split_once('=')?;
            let key = key.trim();
            let after_key = after_key.trim_start();
            let (value, remaining) = if let Some(quoted) = after_key.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = None;
                while let Some((index, c)) = chars.next() {
                    match c {
                        '\\' => value.push(chars.next()?.1),
                        '"' => {
                            end = Some(index + 1);
                            break;
                        }
                        other => value.push(other),
                    }
                }
                (value, &quoted[end?..])
            } else {
                let end = after_key.find(',').unwrap_or(after_key.len());
                (after_key[..end].trim().to_owned(), &after_key[end..])
            };
            match key.to_ascii_lowercase().as_str() {
                "error" => challenge.error = Some(value),
                "error_description" => challenge.error_description = Some(value),
                "acr_values" => challenge.acr_values = Some(value),
                "max_age" => challenge.max_age = value.parse().ok(),
                "scope" => challenge.scope = Some(value),
                _ => {}
            }
            rest = remaining;
        }
        Some(challenge)
    }
}

#[cfg(test)]
mod tests {
    use super::challenge::{parse_bearer, step_up};
    use super::*;

    #[test]
    fn rename_validation_counts_characters_not_bytes() {
        assert!(RenameRequest::new("YubiKey 5C").is_ok());
        assert!(
            RenameRequest::new("a").is_ok(),
            "one character is the minimum"
        );
        assert!(
            RenameRequest::new("ü".repeat(20)).is_ok(),
            "20 two-byte characters fit"
        );
        assert!(
            RenameRequest::new("🔑".repeat(20)).is_ok(),
            "20 four-byte characters fit"
        );
        assert_eq!(
            RenameRequest::new("x".repeat(21)),
            Err(NameError::TooLong { max: 20 })
        );
        assert_eq!(RenameRequest::new(""), Err(NameError::Blank));
        assert_eq!(RenameRequest::new("   "), Err(NameError::Blank));
        assert_eq!(
            RenameRequest::new("key\u{7}"),
            Err(NameError::ControlCharacter)
        );
        assert_eq!(RenameRequest::new("a\nb"), Err(NameError::ControlCharacter));
    }

    #[test]
    fn authenticator_path_encodes_the_id() {
        let id = MethodId::parse("webauthn-roaming|dev_XXXXXXXXXXXXXXXX").unwrap();
        assert_eq!(
            authenticator_path(&id),
            "/v1/me/authenticators/webauthn-roaming%7Cdev_XXXXXXXXXXXXXXXX"
        );
    }

    #[test]
    fn enrollment_request_is_closed() {
        for kind in EnrollmentType::ALL {
            let body = format!("{{\"type\":\"{kind}\"}}");
            let parsed: EnrollmentRequest = serde_json::from_str(&body).unwrap();
            assert_eq!(parsed.kind, kind);
            assert_eq!(
                parsed.kind.ticket_factor().as_str(),
                kind.as_str(),
                "same spelling as Auth0's factor"
            );
            assert_eq!(parsed.kind.method_type().as_str(), kind.as_str());
        }
        for bad in [
            r#"{"type":"totp"}"#,
            r#"{"type":"passkey"}"#,
            r#"{"type":"webauthn_roaming"}"#,
            r#"{"type":"WEBAUTHN-ROAMING"}"#,
            r#"{}"#,
            r#"{"type":"webauthn-roaming","user_id":"auth0|someone-else"}"#,
        ] {
            assert!(
                serde_json::from_str::<EnrollmentRequest>(bad).is_err(),
                "{bad} must be refused"
            );
        }
    }

    #[test]
    fn error_codes_have_statuses_and_unknown_codes_pass_through() {
        for code in ApiErrorCode::KNOWN {
            assert!(code.http_status().is_some(), "{code} needs a status");
            let body = ApiErrorBody::new(code.clone(), "m");
            let json = serde_json::to_value(&body).unwrap();
            assert_eq!(json["error"], code.as_str());
            let back: ApiErrorBody = serde_json::from_value(json).unwrap();
            assert_eq!(back, body);
        }
        let future: ApiErrorBody =
            serde_json::from_str(r#"{"error":"quota_exceeded","message":"later"}"#).unwrap();
        assert_eq!(future.error, ApiErrorCode::Unknown("quota_exceeded".into()));
        assert_eq!(future.error.http_status(), None);
        assert_eq!(ApiErrorCode::StepUpRequired.http_status(), Some(403));
        assert_eq!(ApiErrorCode::LastAuthenticator.http_status(), Some(409));
    }

    #[test]
    fn challenges_are_built_and_parsed() {
        assert_eq!(
            challenge::invalid_token(),
            r#"Bearer error="invalid_token""#
        );
        let header = step_up(300);
        assert_eq!(
            header,
            r#"Bearer error="insufficient_user_authentication", acr_values="http://schemas.openid.net/pape/policies/2007/06/multi-factor", max_age=300"#
        );
        let parsed = parse_bearer(&header).unwrap();
        assert!(parsed.is_step_up());
        assert_eq!(parsed.max_age, Some(300));
        assert_eq!(parsed.acr_values.as_deref(), Some(crate::claims::MFA_ACR));
        let parsed = parse_bearer(&challenge::invalid_token()).unwrap();
        assert_eq!(parsed.error.as_deref(), Some("invalid_token"));
        assert!(!parsed.is_step_up());
        let escaped =
            parse_bearer(r#"bearer error_description="say \"hi\", ok",error=invalid_token"#)
                .unwrap();
        assert_eq!(
            escaped.error_description.as_deref(),
            Some(r#"say "hi", ok"#)
        );
        assert_eq!(escaped.error.as_deref(), Some("invalid_token"));
        assert_eq!(
            parse_bearer("Bearer").unwrap(),
            challenge::BearerChallenge::default()
        );
        assert_eq!(parse_bearer(r#"Basic realm="x""#), None);
        assert_eq!(parse_bearer(r#"Bearer error="unterminated"#), None);
    }

    #[test]
    fn authenticator_serializes_every_field_with_nulls() {
        let authenticator = Authenticator {
            id: "totp|dev_WzMZ2sZbUw1wbC2F".into(),
            kind: MethodType::Totp,
            name: None,
            display_name: "Authenticator app".into(),
            created_at: "2021-09-23T22:57:30.206Z".into(),
            last_used_at: None,
            confirmed: true,
            device_type: None,
            backed_up: None,
            aaguid: None,
            provider: None,
            transports: vec![],
            removable: false,
        };
        let json = serde_json::to_value(&authenticator).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = vec![
            "id",
            "type",
            "name",
            "display_name",
            "created_at",
            "last_used_at",
            "confirmed",
            "device_type",
            "backed_up",
            "aaguid",
            "provider",
            "transports",
            "removable",
        ];
        expected.sort_unstable();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        assert_eq!(keys_sorted, expected, "design.md §3 field set");
        assert!(
            json["name"].is_null(),
            "absent optional values serialize as null"
        );
        assert_eq!(json["type"], "totp");
    }
}
