//! Guardian configuration: `GET /api/v2/guardian/factors` (in the recorded order), `PUT
//! /api/v2/guardian/factors/{name}` (`{"enabled": bool}`), `GET`/`PUT /api/v2/guardian/policies`, and the
//! undocumented-but-real `GET`/`PUT /api/v2/guardian/factors/webauthn-{roaming,platform}/settings` (camelCase keys;
//! kept in memory only, scopes **[unverified]**, assumed `read:`/`update:guardian_factors`).

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use companion_protocol::auth0::{
    GuardianFactor, GuardianFactorName, GuardianFactorUpdate, MfaPolicy, UserVerification,
    WebAuthnFactorSettings,
};
use serde_json::Value;

use super::auth::Caller;
use super::body;
use super::methods::bad_path;
use crate::AppState;
use crate::error::MgmtError;
use crate::world::TenantSettings;

/// `read:guardian_factors`.
pub const READ_FACTORS: &str = "read:guardian_factors";
/// `update:guardian_factors`.
pub const UPDATE_FACTORS: &str = "update:guardian_factors";
/// `read:mfa_policies`.
pub const READ_POLICIES: &str = "read:mfa_policies";
/// `update:mfa_policies`.
pub const UPDATE_POLICIES: &str = "update:mfa_policies";

/// The order in which Auth0 lists factors (recorded, `TestGuardian/MultiFactor/List.yaml`).
pub const FACTOR_ORDER: [&str; 8] = [
    "sms",
    "push-notification",
    "otp",
    "email",
    "duo",
    "webauthn-roaming",
    "webauthn-platform",
    "recovery-code",
];

/// The factors as `GET /guardian/factors` lists them: every known factor in Auth0's order (absent ones disabled),
/// then any other configured name alphabetically.
pub fn factors(settings: &TenantSettings) -> Vec<GuardianFactor> {
    let known = FACTOR_ORDER.iter().map(|name| GuardianFactor {
        name: (*name).to_owned(),
        enabled: settings.factors.get(*name).copied().unwrap_or(false),
        trial_expired: false,
    });
    let extra = settings
        .factors
        .iter()
        .filter(|(name, _)| !FACTOR_ORDER.contains(&name.as_str()))
        .map(|(name, enabled)| GuardianFactor {
            name: name.clone(),
            enabled: *enabled,
            trial_expired: false,
        });
    known.chain(extra).collect()
}

/// `GET /api/v2/guardian/factors`.
pub async fn list_factors(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<GuardianFactor>>, MgmtError> {
    caller.require(&[READ_FACTORS])?;
    Ok(Json(state.store.read(|s| factors(&s.settings))))
}

/// `PUT /api/v2/guardian/factors/{name}`: an unknown name is a 400 (the spec's path enum; it lists no 404).
pub async fn set_factor(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<GuardianFactorUpdate>, MgmtError> {
    caller.require(&[UPDATE_FACTORS])?;
    let Path(name) = path.map_err(|e| bad_path(&e))?;
    if !GuardianFactorName::from(name.as_str()).is_known() {
        return Err(MgmtError::bad_request(
            format!("Path validation error: 'No enum match for: \"{name}\"' on property name."),
            "invalid_uri",
        ));
    }
    let map = body::object(&bytes, &["enabled"], &["enabled"])?;
    let enabled = body::boolean(&map, "enabled")?.unwrap_or(false);
    state.store.write(|s| {
        s.settings.factors.insert(name, enabled);
    });
    Ok(Json(GuardianFactorUpdate { enabled }))
}

/// `GET /api/v2/guardian/policies`.
pub async fn get_policies(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<String>>, MgmtError> {
    caller.require(&[READ_POLICIES])?;
    Ok(Json(state.store.read(|s| s.settings.mfa_policies.clone())))
}

/// `PUT /api/v2/guardian/policies`: body is an array of `all-applications` | `confidence-score` (`[]` = never).
pub async fn set_policies(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    bytes: Bytes,
) -> Result<Json<Vec<String>>, MgmtError> {
    caller.require(&[UPDATE_POLICIES])?;
    let value = body::json(&bytes)?;
    let Value::Array(items) = value else {
        return Err(body::invalid(&format!(
            "'Expected type array but found type {}'.",
            body::type_name(&value)
        )));
    };
    let mut policies = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(text) = item else {
            return Err(body::invalid(&format!(
                "'Expected type string but found type {}'.",
                body::type_name(&item)
            )));
        };
        if !MfaPolicy::from(text.as_str()).is_known() {
            return Err(body::invalid(&format!("'No enum match for: \"{text}\"'.")));
        }
        if !policies.contains(&text) {
            policies.push(text);
        }
    }
    state
        .store
        .write(|s| s.settings.mfa_policies.clone_from(&policies));
    Ok(Json(policies))
}

/// The WebAuthn factors' settings, as recorded on a fresh tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAuthnSettings {
    /// `webauthn-roaming`: `{"userVerification":"required","overrideRelyingParty":false}`.
    pub roaming: WebAuthnFactorSettings,
    /// `webauthn-platform`: `{"overrideRelyingParty":false}`.
    pub platform: WebAuthnFactorSettings,
}

impl Default for WebAuthnSettings {
    fn default() -> Self {
        Self {
            roaming: WebAuthnFactorSettings {
                user_verification: Some(UserVerification::Required),
                override_relying_party: Some(false),
                relying_party_identifier: None,
            },
            platform: WebAuthnFactorSettings {
                user_verification: None,
                override_relying_party: Some(false),
                relying_party_identifier: None,
            },
        }
    }
}

fn settings_of<'a>(
    all: &'a mut WebAuthnSettings,
    factor: &str,
) -> Result<&'a mut WebAuthnFactorSettings, MgmtError> {
    match factor {
        "webauthn-roaming" => Ok(&mut all.roaming),
        "webauthn-platform" => Ok(&mut all.platform),
        _ => Err(MgmtError::new(
            axum::http::StatusCode::NOT_FOUND,
            "Not Found",
            None,
        )),
    }
}

/// `GET /api/v2/guardian/factors/{webauthn-roaming|webauthn-platform}/settings`.
pub async fn get_webauthn_settings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<WebAuthnFactorSettings>, MgmtError> {
    caller.require(&[READ_FACTORS])?;
    let Path(factor) = path.map_err(|e| bad_path(&e))?;
    state
        .mgmt
        .with_webauthn_settings(|all| settings_of(all, &factor).map(|s| Json(s.clone())))
}

/// `PUT /api/v2/guardian/factors/{webauthn-roaming|webauthn-platform}/settings`: merges the body into the settings
/// and echoes it, as recorded (`{"userVerification":"preferred"}` → `{"userVerification":"preferred"}`).
pub async fn set_webauthn_settings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<WebAuthnFactorSettings>, MgmtError> {
    caller.require(&[UPDATE_FACTORS])?;
    let Path(factor) = path.map_err(|e| bad_path(&e))?;
    let mut allowed = vec!["overrideRelyingParty", "relyingPartyIdentifier"];
    if factor == "webauthn-roaming" {
        allowed.push("userVerification");
    }
    let map = body::object(&bytes, &allowed, &[])?;
    body::boolean(&map, "overrideRelyingParty")?;
    body::string(&map, "relyingPartyIdentifier")?;
    if let Some(uv) = body::string(&map, "userVerification")?
        && !UserVerification::from(uv).is_known()
    {
        return Err(body::invalid(&format!(
            "'No enum match for: \"{uv}\"' on property userVerification."
        )));
    }
    let update: WebAuthnFactorSettings = serde_json::from_value(Value::Object(map))
        .map_err(|_| body::invalid("'Invalid request payload'."))?;
    state.mgmt.with_webauthn_settings(|all| {
        let current = settings_of(all, &factor)?;
        if update.user_verification.is_some() {
            current
                .user_verification
                .clone_from(&update.user_verification);
        }
        if update.override_relying_party.is_some() {
            current.override_relying_party = update.override_relying_party;
        }
        if update.relying_party_identifier.is_some() {
            current
                .relying_party_identifier
                .clone_from(&update.relying_party_identifier);
        }
        Ok(Json(update.clone()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_are_listed_in_auth0_order_with_unknown_ones_last() {
        let mut settings = TenantSettings::default();
        settings.factors.insert("otp".to_owned(), true);
        settings.factors.insert("zz-future".to_owned(), true);
        let listed = factors(&settings);
        let names: Vec<&str> = listed.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(&names[..8], FACTOR_ORDER);
        assert_eq!(names[8], "zz-future");
        assert!(listed[2].enabled, "otp is enabled");
        assert!(!listed[0].enabled, "absent factors are disabled");
    }
}
