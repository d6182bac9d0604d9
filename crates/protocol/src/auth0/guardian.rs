//! Guardian shapes: MFA factors and enrollment tickets.

use serde::{Deserialize, Serialize};

/// The `factor` of an enrollment ticket, open to future values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum TicketFactor {
    /// `push-notification`.
    PushNotification,
    /// `phone`.
    Phone,
    /// `email`.
    Email,
    /// `otp`.
    Otp,
    /// `webauthn-roaming`: a security key.
    WebauthnRoaming,
    /// `webauthn-platform`: this device's biometrics.
    WebauthnPlatform,
    /// A factor this build does not know.
    Unknown(String),
}

impl TicketFactor {
    /// Auth0's spelling of this factor.
    pub fn as_str(&self) -> &str {
        match self {
            Self::PushNotification => "push-notification",
            Self::Phone => "phone",
            Self::Email => "email",
            Self::Otp => "otp",
            Self::WebauthnRoaming => "webauthn-roaming",
            Self::WebauthnPlatform => "webauthn-platform",
            Self::Unknown(other) => other,
        }
    }
}

impl From<String> for TicketFactor {
    fn from(value: String) -> Self {
        match value.as_str() {
            "push-notification" => Self::PushNotification,
            "phone" => Self::Phone,
            "email" => Self::Email,
            "otp" => Self::Otp,
            "webauthn-roaming" => Self::WebauthnRoaming,
            "webauthn-platform" => Self::WebauthnPlatform,
            _ => Self::Unknown(value),
        }
    }
}

impl From<TicketFactor> for String {
    fn from(value: TicketFactor) -> Self {
        match value {
            TicketFactor::Unknown(other) => other,
            known => known.as_str().to_owned(),
        }
    }
}

/// Body of `POST /api/v2/guardian/enrollments/ticket` (`additionalProperties: false`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentTicketRequest {
    /// The user who will enroll.
    pub user_id: String,
    /// Alternate address for the enrollment email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether Auth0 sends the enrollment email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_mail: Option<bool>,
    /// Locale of that email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_locale: Option<String>,
    /// The factor to enroll (Universal Login only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<TicketFactor>,
    /// Lets an already-enrolled user add factors (Universal Login only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_multiple_enrollments: Option<bool>,
}

/// Response of `POST /api/v2/guardian/enrollments/ticket`. Treat `ticket_url` as opaque.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentTicket {
    /// The ticket's id.
    pub ticket_id: String,
    /// The page that runs the enrollment.
    pub ticket_url: String,
}

/// One entry of `GET /api/v2/guardian/factors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardianFactor {
    /// Factor name (`GuardianFactorNameEnum`: `sms`, `otp`, `webauthn-roaming`, ...), kept as a string.
    pub name: String,
    /// Whether the factor is enabled.
    pub enabled: bool,
    /// Whether the factor's trial expired.
    #[serde(default)]
    pub trial_expired: bool,
}

/// Body and response of `PUT /api/v2/guardian/factors/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardianFactorUpdate {
    /// Whether the factor is enabled.
    pub enabled: bool,
}
