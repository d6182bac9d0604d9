//! The commands the UI invokes. Each one parses its input, calls `companion-client` and maps the error: no rules
//! live here. Every response type is built for the UI and holds no token, code, verifier or secret (a test
//! serializes each one and checks).

#![allow(
    clippy::needless_pass_by_value,
    reason = "Tauri hands command arguments (State, AppHandle) over by value"
)]

use std::path::PathBuf;

use companion_client::EnrollOptions;
use companion_client::config::ConfigEntry;
use companion_client::oidc::SignInOptions;
use companion_client::session::{Persistence, SignedIn, Status};
use companion_protocol::api::{Authenticator, AuthenticatorList, EnrollmentType, RenameRequest};
use serde::Serialize;
use tauri::{AppHandle, Manager as _, Runtime, State};

use crate::error::{CommandError, ErrorCode};
use crate::state::AppState;

/// Who is signed in, as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusView {
    /// Whether a usable session exists.
    pub signed_in: bool,
    /// Display name, when known.
    pub name: Option<String>,
    /// Email, when known.
    pub email: Option<String>,
    /// `stored` (keyring) or `memory_only`, when signed in.
    pub persistence: Option<Persistence>,
    /// Whether the OS keyring works (else the session ends with the app).
    pub keyring_available: bool,
    /// The tenant's URL.
    pub tenant: String,
}

impl From<Status> for StatusView {
    fn from(status: Status) -> Self {
        Self {
            signed_in: status.signed_in,
            name: status.name,
            email: status.email,
            persistence: status.persistence,
            keyring_available: status.keyring_available,
            tenant: status.tenant,
        }
    }
}

impl StatusView {
    fn signed_in(signed_in: SignedIn, tenant: String) -> Self {
        Self {
            signed_in: true,
            name: signed_in.identity.name,
            email: signed_in.identity.email,
            persistence: Some(signed_in.persistence),
            keyring_available: signed_in.persistence == Persistence::Stored,
            tenant,
        }
    }
}

/// The effective configuration: each key with its value, layer and whether the organization locked it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigView {
    /// Every key, in a stable order.
    pub entries: Vec<ConfigEntry>,
    /// The support link, when configured.
    pub support_url: Option<String>,
    /// The kinds of method the organization lets users add.
    pub enrollment_types: Vec<EnrollmentType>,
    /// Why the app cannot work with this configuration, if it cannot.
    pub problem: Option<String>,
}

/// Where exported logs were written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogExport {
    /// The file, for the user to attach to a support request.
    pub path: String,
}

/// The session's status (refreshes once to prove the session is alive).
#[tauri::command]
pub async fn status(state: State<'_, AppState>) -> Result<StatusView, CommandError> {
    let companion = state.companion()?;
    Ok(companion.session().status().await?.into())
}

async fn sign_in_round(state: &AppState, step_up: bool) -> Result<StatusView, CommandError> {
    let companion = state.companion()?;
    let round = state.begin_sign_in()?;
    let options = SignInOptions {
        step_up,
        cancel: round.token(),
        ..SignInOptions::default()
    };
    let launcher = state.launcher();
    let signed_in = companion
        .session()
        .sign_in(launcher.as_ref(), &options)
        .await?;
    tracing::info!(step_up, "signed in");
    Ok(StatusView::signed_in(
        signed_in,
        companion.session().config().auth0_url.to_string(),
    ))
}

/// Signs in through the system browser (Authorization Code + PKCE on a loopback port).
#[tauri::command]
pub async fn sign_in(state: State<'_, AppState>) -> Result<StatusView, CommandError> {
    sign_in_round(&state, false).await
}

/// Proves a recent MFA (step-up sign-in), before retrying a removal.
#[tauri::command]
pub async fn step_up(state: State<'_, AppState>) -> Result<StatusView, CommandError> {
    sign_in_round(&state, true).await
}

/// Cancels the sign-in (or step-up) waiting for the browser; returns whether one was waiting.
#[tauri::command]
pub fn cancel_sign_in(state: State<'_, AppState>) -> bool {
    state.cancel_sign_in()
}

/// The user's sign-in methods.
#[tauri::command]
pub async fn list(state: State<'_, AppState>) -> Result<AuthenticatorList, CommandError> {
    Ok(state.companion()?.list().await?)
}

/// Renames a method (1 to 20 characters, no control characters).
#[tauri::command]
pub async fn rename(
    state: State<'_, AppState>,
    id: String,
    name: String,
) -> Result<Authenticator, CommandError> {
    let request = RenameRequest::new(name)
        .map_err(|error| CommandError::new(ErrorCode::InvalidName, error.to_string()))?;
    Ok(state.companion()?.rename(&id, &request.name).await?)
}

/// Removes a method; `step_up_required` asks the UI to run [`step_up`] and retry.
#[tauri::command]
pub async fn remove(state: State<'_, AppState>, id: String) -> Result<(), CommandError> {
    state.companion()?.remove(&id).await?;
    tracing::info!(
        kind = id.split('|').next().unwrap_or_default(),
        "removed a method"
    );
    Ok(())
}

/// Adds a method of `kind` in the browser and waits until it appears; returns it.
#[tauri::command]
pub async fn enroll(
    state: State<'_, AppState>,
    kind: EnrollmentType,
) -> Result<Authenticator, CommandError> {
    let companion = state.companion()?;
    let round = state.begin_enroll()?;
    let options = EnrollOptions {
        cancel: round.token(),
        ..EnrollOptions::default()
    };
    let launcher = state.launcher();
    let added = companion.enroll(kind, launcher.as_ref(), &options).await?;
    tracing::info!(kind = kind.as_str(), "added a method");
    Ok(added)
}

/// Cancels the enrollment waiting for the browser; returns whether one was waiting.
#[tauri::command]
pub fn cancel_enroll(state: State<'_, AppState>) -> bool {
    state.cancel_enroll()
}

/// Signs out: revokes the session and forgets it on this computer.
#[tauri::command]
pub async fn sign_out(state: State<'_, AppState>) -> Result<(), CommandError> {
    let companion = state.companion()?;
    match companion.session().sign_out().await {
        Ok(_) => Ok(()),
        // The local session is gone even when revocation failed: the user is signed out here.
        Err(error) if error.code() == "network" => {
            tracing::warn!(%error, "signed out locally; revocation failed");
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// The effective configuration, with locked (managed) keys marked.
#[tauri::command]
pub fn config(state: State<'_, AppState>) -> ConfigView {
    match state.config() {
        Ok(effective) => {
            let client = effective.validate();
            let (support_url, enrollment_types) = match &client {
                Ok(client) => (
                    client.support_url.as_ref().map(ToString::to_string),
                    client.enrollment_types.clone(),
                ),
                Err(_) => (None, Vec::new()),
            };
            ConfigView {
                entries: effective.entries(),
                support_url,
                enrollment_types,
                problem: client.err().map(|error| error.to_string()),
            }
        }
        Err(error) => ConfigView {
            entries: Vec::new(),
            support_url: None,
            enrollment_types: Vec::new(),
            problem: Some(error.to_string()),
        },
    }
}

/// Copies the app's log file to the Downloads folder (else the home folder) for a support request.
#[tauri::command]
pub fn export_logs<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
) -> Result<LogExport, CommandError> {
    let Some(log_file) = state.log_file() else {
        return Err(CommandError::new(
            ErrorCode::Failed,
            "logging is not available",
        ));
    };
    let paths = app.path();
    let folder: PathBuf = paths
        .download_dir()
        .or_else(|_| paths.home_dir())
        .map_err(|error| {
            CommandError::new(
                ErrorCode::Failed,
                format!("no folder to export to ({error})"),
            )
        })?;
    let target = folder.join("passkey-companion-logs.jsonl");
    std::fs::copy(&log_file, &target).map_err(|error| {
        CommandError::new(
            ErrorCode::Failed,
            format!("cannot write {} ({error})", target.display()),
        )
    })?;
    Ok(LogExport {
        path: target.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use companion_client::config::Layer;
    use companion_protocol::auth0::MethodType;

    use super::*;

    /// Words that would mean a token, code, verifier or secret crossed into the webview.
    const FORBIDDEN: &[&str] = &[
        "token",
        "verifier",
        "secret",
        "password",
        "credential_secret",
        "authorization",
        "bearer",
        "refresh",
        "access",
        "id_token",
        "nonce",
        "state",
        "pkce",
        "assertion",
        "private",
    ];

    fn keys(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    out.push(key.clone());
                    keys(child, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| keys(item, out)),
            _ => {}
        }
    }

    fn sample_authenticator() -> Authenticator {
        Authenticator {
            id: "webauthn-roaming|dev_0123456789abcdef".into(),
            kind: MethodType::WebauthnRoaming,
            name: Some("Blue key".into()),
            display_name: "Blue key".into(),
            created_at: "2026-01-02T03:04:05Z".into(),
            last_used_at: Some("2026-02-03T04:05:06Z".into()),
            confirmed: true,
            device_type: Some("single_device".into()),
            backed_up: Some(false),
            aaguid: Some("ee882879-721c-4913-9775-3dfcce97072a".into()),
            provider: Some("YubiKey 5".into()),
            transports: vec!["usb".into(), "nfc".into()],
            removable: true,
        }
    }

    /// Every command's response type, fully populated (every optional field set), as the webview receives it.
    fn every_response() -> Vec<(&'static str, serde_json::Value)> {
        let to_json = |value: &dyn erased::Json| value.json();
        vec![
            (
                "status / sign_in / step_up",
                to_json(&StatusView {
                    signed_in: true,
                    name: Some("Ada Lovelace".into()),
                    email: Some("ada@example.com".into()),
                    persistence: Some(Persistence::MemoryOnly),
                    keyring_available: false,
                    tenant: "http://localhost:1234/".into(),
                }),
            ),
            (
                "list",
                to_json(&AuthenticatorList {
                    authenticators: vec![sample_authenticator()],
                }),
            ),
            ("rename / enroll", to_json(&sample_authenticator())),
            ("remove / sign_out", to_json(&())),
            ("cancel_sign_in / cancel_enroll", to_json(&true)),
            (
                "config",
                to_json(&ConfigView {
                    entries: vec![ConfigEntry {
                        key: "proxy_url",
                        value: Some("https://proxy.example.com/".into()),
                        layer: Some(Layer::Managed),
                        locked: true,
                    }],
                    support_url: Some("https://help.example.com/".into()),
                    enrollment_types: EnrollmentType::ALL.to_vec(),
                    problem: Some("missing client_id".into()),
                }),
            ),
            (
                "export_logs",
                to_json(&LogExport {
                    path: "/home/ada/Downloads/passkey-companion-logs.jsonl".into(),
                }),
            ),
            (
                "every error",
                to_json(&CommandError {
                    code: ErrorCode::Busy,
                    message: "busy".into(),
                    retry_after_secs: Some(3),
                }),
            ),
        ]
    }

    /// Object-safe serialization, so the samples of different types fit in one list.
    mod erased {
        pub(super) trait Json {
            fn json(&self) -> serde_json::Value;
        }
        impl<T: serde::Serialize> Json for T {
            fn json(&self) -> serde_json::Value {
                serde_json::to_value(self).expect("response types serialize")
            }
        }
    }

    #[test]
    fn no_response_type_has_a_token_bearing_field() {
        for (command, json) in every_response() {
            let mut names = Vec::new();
            keys(&json, &mut names);
            for name in names {
                let lower = name.to_ascii_lowercase();
                for word in FORBIDDEN {
                    assert!(
                        !lower.contains(word),
                        "`{command}` answers with a field `{name}` that looks secret-bearing ({word}): {json}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_config_entries_show_every_key_with_a_locked_flag() {
        let sources = companion_client::config::ConfigSources::env_only(vec![(
            "COMPANION_PROXY_URL".into(),
            "https://proxy.example.com".into(),
        )]);
        let effective = sources.load().expect("env-only config loads");
        let entries = effective.entries();
        assert!(
            entries.iter().any(|e| e.key == "proxy_url" && !e.locked),
            "environment values are not locked: {entries:?}"
        );
        assert!(
            entries.iter().any(|e| e.key == "support_url"),
            "every key is listed: {entries:?}"
        );
    }
}
