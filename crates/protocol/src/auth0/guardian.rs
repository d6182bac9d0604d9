//! Guardian shapes: MFA factors, MFA policies, WebAuthn factor settings and enrollment tickets.

use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;

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
    /// Every factor this build knows (`GuardianEnrollmentFactorEnum`).
    pub const KNOWN: [Self; 6] = [
        Self::PushNotification,
        Self::Phone,
        Self::Email,
        Self::Otp,
        Self::WebauthnRoaming,
        Self::WebauthnPlatform,
    ];

    /// Whether this factor is one this build knows.
    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Unknown(_))
    }

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

impl From<&str> for TicketFactor {
    fn from(value: &str) -> Self {
        Self::from(value.to_owned())
    }
}

impl std::fmt::Display for TicketFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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

impl GuardianFactor {
    /// The factor's name as a [`GuardianFactorName`].
    pub fn factor_name(&self) -> GuardianFactorName {
        GuardianFactorName::from(self.name.as_str())
    }
}

/// Body and response of `PUT /api/v2/guardian/factors/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardianFactorUpdate {
    /// Whether the factor is enabled.
    pub enabled: bool,
}

open_enum! {
    /// A Guardian factor name (`GuardianFactorNameEnum`), as in `GET /guardian/factors` and
    /// `PUT /guardian/factors/{name}`. Note `sms` here where tickets say `phone`.
    pub enum GuardianFactorName {
        /// `push-notification`: Auth0 Guardian push.
        PushNotification => "push-notification",
        /// `sms`: phone messages.
        Sms => "sms",
        /// `email`.
        Email => "email",
        /// `duo`.
        Duo => "duo",
        /// `otp`: an authenticator app.
        Otp => "otp",
        /// `webauthn-roaming`: security keys.
        WebauthnRoaming => "webauthn-roaming",
        /// `webauthn-platform`: device biometrics.
        WebauthnPlatform => "webauthn-platform",
        /// `recovery-code`.
        RecoveryCode => "recovery-code",
    }
}

open_enum! {
    /// A tenant MFA policy (`MFAPolicyEnum`); `GET`/`PUT /guardian/policies` carry an array of them, `[]` = never.
    pub enum MfaPolicy {
        /// `all-applications`: MFA on every login.
        AllApplications => "all-applications",
        /// `confidence-score`: Adaptive MFA (Enterprise add-on).
        ConfidenceScore => "confidence-score",
    }
}

open_enum! {
    /// WebAuthn `userVerification` of the security-key factor (dashboard: Never / If supported / Required).
    pub enum UserVerification {
        /// `discouraged`.
        Discouraged => "discouraged",
        /// `preferred`.
        Preferred => "preferred",
        /// `required`.
        Required => "required",
    }
}

/// Body and response of `GET`/`PUT /api/v2/guardian/factors/webauthn-roaming/settings` and
/// `.../webauthn-platform/settings`: undocumented in the current spec but real (go-auth0 v1, Terraform), with
/// **camelCase** keys. Absent keys stay absent when serialized, so a `PUT` sends only what it sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebAuthnFactorSettings {
    /// `userVerification` (roaming only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_verification: Option<UserVerification>,
    /// `overrideRelyingParty`: use `relyingPartyIdentifier` instead of the tenant's domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_relying_party: Option<bool>,
    /// `relyingPartyIdentifier`: needs `overrideRelyingParty` and a custom domain it is a suffix of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relying_party_identifier: Option<String>,
}
