//! A user's authentication methods as `GET /api/v2/users/{id}/authentication-methods` returns them.

use serde::{Deserialize, Serialize};

/// The type of an authentication method (`AuthenticationMethodTypeEnum`), open to future values.
///
/// Auth0's Management API says `push`; Actions, tickets and My Account say `push-notification`.
/// Both deserialize to [`MethodType::Push`], which serializes as the Management API's `push`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum MethodType {
    /// `recovery-code`.
    RecoveryCode,
    /// `totp`: an authenticator app.
    Totp,
    /// `push` (also read from `push-notification`): Auth0 Guardian push.
    Push,
    /// `phone`: SMS or voice.
    Phone,
    /// `email`: one-time codes by email.
    Email,
    /// `email-verification`.
    EmailVerification,
    /// `webauthn-roaming`: a security key used as a second factor.
    WebauthnRoaming,
    /// `webauthn-platform`: device biometrics (Touch ID, Windows Hello) used as a second factor.
    WebauthnPlatform,
    /// `guardian`.
    Guardian,
    /// `passkey`: a first-factor passkey of a database connection.
    Passkey,
    /// `password`.
    Password,
    /// Any type this build does not know, kept as Auth0 sent it.
    Unknown(String),
}

impl MethodType {
    /// Every type string this build knows, in the spelling the Management API uses.
    pub const KNOWN: [Self; 11] = [
        Self::RecoveryCode,
        Self::Totp,
        Self::Push,
        Self::Phone,
        Self::Email,
        Self::EmailVerification,
        Self::WebauthnRoaming,
        Self::WebauthnPlatform,
        Self::Guardian,
        Self::Passkey,
        Self::Password,
    ];

    /// The Management API spelling of this type.
    pub fn as_str(&self) -> &str {
        match self {
            Self::RecoveryCode => "recovery-code",
            Self::Totp => "totp",
            Self::Push => "push",
            Self::Phone => "phone",
            Self::Email => "email",
            Self::EmailVerification => "email-verification",
            Self::WebauthnRoaming => "webauthn-roaming",
            Self::WebauthnPlatform => "webauthn-platform",
            Self::Guardian => "guardian",
            Self::Passkey => "passkey",
            Self::Password => "password",
            Self::Unknown(other) => other,
        }
    }

    /// A short human label for this type, for when a method has no name (e.g. "Security key").
    /// Unknown types are labelled with their raw type string.
    pub fn label(&self) -> &str {
        match self {
            Self::RecoveryCode => "Recovery code",
            Self::Totp => "Authenticator app",
            Self::Push => "Guardian push",
            Self::Phone => "Phone",
            Self::Email => "Email",
            Self::EmailVerification => "Email verification",
            Self::WebauthnRoaming => "Security key",
            Self::WebauthnPlatform => "Device biometrics",
            Self::Guardian => "Guardian",
            Self::Passkey => "Passkey",
            Self::Password => "Password",
            Self::Unknown(other) => other,
        }
    }

    /// Whether this is a WebAuthn credential (security key, platform authenticator or passkey).
    pub fn is_webauthn(&self) -> bool {
        matches!(
            self,
            Self::WebauthnRoaming | Self::WebauthnPlatform | Self::Passkey
        )
    }
}

impl From<String> for MethodType {
    fn from(value: String) -> Self {
        match value.as_str() {
            "recovery-code" => Self::RecoveryCode,
            "totp" => Self::Totp,
            "push" | "push-notification" => Self::Push,
            "phone" => Self::Phone,
            "email" => Self::Email,
            "email-verification" => Self::EmailVerification,
            "webauthn-roaming" | "webauthn_roaming" => Self::WebauthnRoaming,
            "webauthn-platform" | "webauthn_platform" => Self::WebauthnPlatform,
            "guardian" => Self::Guardian,
            "passkey" => Self::Passkey,
            "password" => Self::Password,
            _ => Self::Unknown(value),
        }
    }
}

impl From<&str> for MethodType {
    fn from(value: &str) -> Self {
        Self::from(value.to_owned())
    }
}

impl From<MethodType> for String {
    fn from(value: MethodType) -> Self {
        match value {
            MethodType::Unknown(other) => other,
            known => known.as_str().to_owned(),
        }
    }
}

impl std::fmt::Display for MethodType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sub-method linked to a method, such as the `sms` and `voice` channels of a `phone` method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedMethod {
    /// The linked method's id, e.g. `sms|dev_...`.
    pub id: String,
    /// The linked method's type: `totp`, `push`, `sms` or `voice` (kept as a plain string).
    #[serde(rename = "type")]
    pub kind: String,
}

/// One authentication method of a user (schema `UserAuthenticationMethod`).
///
/// Only `id`, `type` and `created_at` are required by Auth0; every other field is optional and omitted when absent.
/// Timestamps are kept as Auth0 wrote them (RFC 3339 with milliseconds, e.g. `2023-03-10T16:25:51.113Z`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticationMethod {
    /// `<type>|dev_<random>`.
    pub id: String,
    /// The method's type.
    #[serde(rename = "type")]
    pub kind: MethodType,
    /// Enrollment status; present in GET responses, absent from POST and PATCH responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<bool>,
    /// Human label, at most 20 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Linked sub-methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_methods: Option<Vec<LinkedMethod>>,
    /// `sms` or `voice`, for phone methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_authentication_method: Option<String>,
    /// Linked methods share a link id and are deleted together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_id: Option<String>,
    /// Phone number, masked in GET responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Email address, masked in GET responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// WebAuthn credential id (base64url).
    #[serde(default, alias = "keyId", skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// WebAuthn public key (base64).
    #[serde(default, alias = "publicKey", skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Enrollment time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolled_at: Option<String>,
    /// Last successful use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_auth_at: Option<String>,
    /// `single_device` or `multi_device` (passkeys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_device_type: Option<String>,
    /// Whether the credential is backed up (passkeys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_backed_up: Option<bool>,
    /// Linked identity (passkeys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_user_id: Option<String>,
    /// Browser user agent at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// WebAuthn user handle (passkeys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_handle: Option<String>,
    /// WebAuthn transports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transports: Option<Vec<String>>,
    /// Authenticator model identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aaguid: Option<String>,
    /// WebAuthn relying party id.
    #[serde(
        default,
        alias = "relyingPartyIdentifier",
        skip_serializing_if = "Option::is_none"
    )]
    pub relying_party_identifier: Option<String>,
}

/// The paged shape of the list endpoint (`include_totals=true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticationMethodsPage {
    /// Index of the first item.
    #[serde(default)]
    pub start: u64,
    /// Page size used.
    #[serde(default)]
    pub limit: u64,
    /// Total number of methods; Auth0 omits it when the list is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// The methods of this page.
    pub authenticators: Vec<AuthenticationMethod>,
}

/// The list endpoint's response: a bare array (`include_totals=false`, the default) or a page with totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AuthenticationMethodsResponse {
    /// `include_totals=false`: a bare JSON array.
    Bare(Vec<AuthenticationMethod>),
    /// `include_totals=true`: `{start, limit, total?, authenticators}`.
    Paged(AuthenticationMethodsPage),
}

impl AuthenticationMethodsResponse {
    /// The methods, whichever shape carried them.
    pub fn into_methods(self) -> Vec<AuthenticationMethod> {
        match self {
            Self::Bare(methods) => methods,
            Self::Paged(page) => page.authenticators,
        }
    }
}

/// Body of `PATCH /api/v2/users/{id}/authentication-methods/{method_id}` (`additionalProperties: false`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateAuthenticationMethod {
    /// New human label, at most 20 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `sms` or `voice`, for phone methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_authentication_method: Option<String>,
}
