//! The Authentication API's MFA endpoints (`/mfa/authenticators`), as seen with an MFA token.

use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;

open_enum! {
    /// `authenticator_type` of an MFA API authenticator.
    pub enum MfaAuthenticatorType {
        /// `otp`: an authenticator app (Management type `totp`).
        Otp => "otp",
        /// `oob`: out of band (SMS, voice, email or Guardian push; see `oob_channel`).
        Oob => "oob",
        /// `recovery-code`.
        RecoveryCode => "recovery-code",
    }
}

open_enum! {
    /// `oob_channel` of an out-of-band MFA API authenticator.
    pub enum OobChannel {
        /// `sms`.
        Sms => "sms",
        /// `voice`.
        Voice => "voice",
        /// `auth0`: Guardian push.
        Auth0 => "auth0",
        /// `email`.
        Email => "email",
    }
}

/// One item of `GET /mfa/authenticators`, e.g.
/// `{"id":"sms|dev_klnv5yshzzoosSUm","authenticator_type":"oob","active":false,"oob_channel":"sms","name":"XXXXXXXXX9167"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaAuthenticator {
    /// Method id, `<type>|dev_...` (note `push|...` and `sms|...` here).
    pub id: String,
    /// The authenticator's kind.
    pub authenticator_type: MfaAuthenticatorType,
    /// Whether enrollment is complete and usable.
    pub active: bool,
    /// For `oob`: the delivery channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oob_channel: Option<OobChannel>,
    /// Masked phone number or email, when Auth0 shows one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}
