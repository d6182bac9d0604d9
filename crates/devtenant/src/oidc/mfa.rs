//! The hosted MFA challenge page: a TOTP form (field `code`), a recovery-code form (field `recovery_code`) and
//! a real WebAuthn assertion ([`crate::webauthn::Ceremonies`]), each offered when the user has that method.
//!
//! A used recovery code is replaced, as Auth0 does: the page shows the new code once before returning to the
//! application.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::AppState;
use crate::clock::auth0_timestamp;
use crate::pages::{escape, layout};
use crate::store::{MethodSecret, User, digest};

use super::LoginTransaction;
use super::authorize::{complete, start_session};
use super::login::{TxQuery, expired};
use super::session::{found, link};

/// Path of the MFA page.
pub const MFA_PATH: &str = "/u/mfa";

/// Length of a recovery code (Auth0's are 24 characters).
const RECOVERY_CODE_LEN: usize = 24;

/// Whether `code` is a valid TOTP code for `secret_base32` at Unix time `now` (SHA-1, 6 digits, 30 s, ±1 step).
pub fn totp_matches(secret_base32: &str, code: &str, now: i64) -> bool {
    let Ok(secret) = Secret::Encoded(secret_base32.to_owned()).to_bytes() else {
        return false;
    };
    let Ok(now) = u64::try_from(now) else {
        return false;
    };
    let code = code.trim();
    code.len() == 6
        && code.bytes().all(|b| b.is_ascii_digit())
        && TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, secret).check(code, now)
}

/// Canonical form of a typed recovery code: no spaces or dashes, upper case.
fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A fresh recovery code: upper-case letters and digits.
fn new_recovery_code() -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..RECOVERY_CODE_LEN)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

fn has_secret(user: &User, pred: impl Fn(&MethodSecret) -> bool) -> bool {
    user.methods
        .iter()
        .any(|m| m.secret.as_ref().is_some_and(&pred))
}

/// Renders the challenge page for `user`.
fn render(state: &AppState, tx_id: &str, user: &User, error: Option<&str>) -> String {
    let mut body = String::from("<h1>Verify your identity</h1>");
    if let Some(error) = error {
        body.push_str(&format!(
            r#"<p class="error" role="alert" id="error-message">{}</p>"#,
            escape(error)
        ));
    }
    let hidden = format!(
        r#"<input type="hidden" name="state" value="{}">"#,
        escape(tx_id)
    );
    let mut offered = false;
    match state.webauthn.start_authentication(user, state.clock.now()) {
        Ok(Some(challenge)) => {
            offered = true;
            body.push_str("<h2>Security key or this device</h2>");
            body.push_str(&challenge.html(MFA_PATH, &[("state", tx_id)]));
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "cannot start a WebAuthn MFA challenge"),
    }
    if has_secret(user, |s| matches!(s, MethodSecret::Totp { .. })) {
        offered = true;
        body.push_str(&format!(
            r#"<h2>Authenticator app</h2>
<form method="post" action="{MFA_PATH}" id="totp-form">
{hidden}
<label for="code">Enter the 6-digit code from your authenticator app</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{{6}}" maxlength="6" required autofocus>
<button type="submit">Continue</button>
</form>"#
        ));
    }
    if has_secret(user, |s| matches!(s, MethodSecret::RecoveryCode { .. })) {
        offered = true;
        body.push_str(&format!(
            r#"<h2>Recovery code</h2>
<form method="post" action="{MFA_PATH}" id="recovery-form">
{hidden}
<label for="recovery_code">Enter your recovery code</label>
<input id="recovery_code" name="recovery_code" autocomplete="off" required>
<button type="submit" class="secondary">Use recovery code</button>
</form>"#
        ));
    }
    if !offered {
        body.push_str(
            "<p>None of your methods can be used here. Ask your administrator to reset your multi-factor authentication.</p>",
        );
    }
    layout("Verify your identity", &body)
}

/// The transaction `tx_id` and its user, when the password step is done.
fn pending(state: &AppState, tx_id: Option<&str>) -> Option<(String, LoginTransaction, User)> {
    let tx_id = tx_id?;
    let tx = state.oidc.transaction(tx_id, state.clock.unix())?;
    let user_id = tx.user_id.clone()?;
    let user = state.store.read(|s| s.user(&user_id).cloned())?;
    Some((tx_id.to_owned(), tx, user))
}

/// `GET /u/mfa?state=<tx>`.
pub async fn page(State(state): State<AppState>, Query(query): Query<TxQuery>) -> Response {
    let Some((tx_id, _, user)) = pending(&state, query.state.as_deref()) else {
        return expired();
    };
    Html(render(&state, &tx_id, &user, None)).into_response()
}

/// The MFA forms' fields (one form posts `code`, one `recovery_code`, the WebAuthn one `ceremony` and
/// `credential`).
#[derive(Deserialize)]
pub struct MfaForm {
    state: Option<String>,
    code: Option<String>,
    recovery_code: Option<String>,
    ceremony: Option<String>,
    credential: Option<String>,
}

impl std::fmt::Debug for MfaForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaForm").finish_non_exhaustive()
    }
}

enum Outcome {
    Passed,
    PassedWithNewRecoveryCode(String),
    Failed(String),
}

fn check_totp(state: &AppState, user_id: &str, code: &str) -> Outcome {
    let now = state.clock.now();
    let passed = state.store.write(|s| {
        let Some(user) = s.user_mut(user_id) else {
            return false;
        };
        for stored in &mut user.methods {
            if let Some(MethodSecret::Totp { secret_base32 }) = &stored.secret
                && totp_matches(secret_base32, code, now.unix_timestamp())
            {
                stored.method.last_auth_at = Some(auth0_timestamp(now));
                return true;
            }
        }
        false
    });
    if passed {
        Outcome::Passed
    } else {
        Outcome::Failed("Wrong code. Check your authenticator app and try again.".to_owned())
    }
}

fn check_recovery_code(state: &AppState, user_id: &str, code: &str) -> Outcome {
    let now = state.clock.now();
    let given = digest(&normalize_recovery_code(code));
    let fresh = new_recovery_code();
    let replaced = state.store.write(|s| {
        let Some(user) = s.user_mut(user_id) else {
            return false;
        };
        for stored in &mut user.methods {
            if let Some(MethodSecret::RecoveryCode { code_digest }) = &mut stored.secret
                && super::secret_eq(code_digest, &given)
            {
                // Single use: the code is replaced at once.
                *code_digest = digest(&fresh);
                stored.method.last_auth_at = Some(auth0_timestamp(now));
                return true;
            }
        }
        false
    });
    if replaced {
        Outcome::PassedWithNewRecoveryCode(fresh)
    } else {
        Outcome::Failed("Invalid recovery code.".to_owned())
    }
}

/// `POST /u/mfa`.
pub async fn submit(State(state): State<AppState>, Form(form): Form<MfaForm>) -> Response {
    let Some((tx_id, _, user)) = pending(&state, form.state.as_deref()) else {
        return expired();
    };
    let non_empty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let outcome = if let (Some(ceremony), Some(credential)) =
        (non_empty(&form.ceremony), non_empty(&form.credential))
    {
        match state.webauthn.finish_authentication(
            &state.store,
            &user.user_id,
            &ceremony,
            &credential,
            state.clock.now(),
        ) {
            Ok(_) => Outcome::Passed,
            Err(error) => Outcome::Failed(format!("That did not work: {error}.")),
        }
    } else if let Some(code) = non_empty(&form.code) {
        check_totp(&state, &user.user_id, &code)
    } else if let Some(code) = non_empty(&form.recovery_code) {
        check_recovery_code(&state, &user.user_id, &code)
    } else {
        Outcome::Failed("Enter a code or use your security key.".to_owned())
    };
    let new_recovery_code = match outcome {
        Outcome::Failed(message) => {
            tracing::info!("failed MFA challenge");
            return (
                StatusCode::BAD_REQUEST,
                Html(render(&state, &tx_id, &user, Some(&message))),
            )
                .into_response();
        }
        Outcome::Passed => None,
        Outcome::PassedWithNewRecoveryCode(code) => Some(code),
    };
    let now = state.clock.unix();
    let Some(tx) = state.oidc.take_transaction(&tx_id, now) else {
        return expired();
    };
    let auth_time = tx.auth_time.unwrap_or(now);
    let location = complete(&state, tx, &user.user_id, auth_time, Some(now), true);
    let cookie = start_session(&state, &user.user_id, auth_time, Some(now));
    match new_recovery_code {
        None => found(&location, Some(cookie)),
        Some(code) => new_code_page(&location, &code, cookie),
    }
}

fn new_code_page(location: &str, code: &str, cookie: HeaderValue) -> Response {
    let body = format!(
        r#"<h1>Save your new recovery code</h1>
<p>Your recovery code was used and replaced. Write the new one down and keep it somewhere safe: you will need it
if you lose your other methods.</p>
<p><code id="recovery-code">{code}</code></p>
<p id="continue">{link}</p>"#,
        code = escape(code),
        link = link(location, "I have saved it, continue"),
    );
    let mut response = Html(layout("New recovery code", &body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.append(header::SET_COOKIE, cookie);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_accepts_one_step_of_skew_and_nothing_more() {
        let secret = "JBSWY3DPEHPK3PXP";
        let bytes = Secret::Encoded(secret.to_owned())
            .to_bytes()
            .expect("base32");
        let totp = TOTP::new_unchecked(Algorithm::SHA1, 6, 0, 30, bytes);
        let now = 1_800_000_015_i64;
        let at = |t: i64| totp.generate(u64::try_from(t).expect("positive"));
        assert!(totp_matches(secret, &at(now), now));
        assert!(totp_matches(secret, &at(now - 30), now), "previous step");
        assert!(totp_matches(secret, &at(now + 30), now), "next step");
        assert!(!totp_matches(secret, &at(now - 90), now), "too old");
        assert!(!totp_matches(secret, "12345", now), "too short");
        assert!(!totp_matches("not base32!", &at(now), now));
    }

    #[test]
    fn form_debug_output_is_redacted() {
        let form = MfaForm {
            state: Some("tx".into()),
            code: Some("123456".into()),
            recovery_code: Some("RECOVERYCODE".into()),
            ceremony: None,
            credential: None,
        };
        let debug = format!("{form:?}");
        assert!(
            !debug.contains("123456") && !debug.contains("RECOVERYCODE"),
            "{debug}"
        );
    }

    #[test]
    fn recovery_codes_normalize() {
        assert_eq!(
            normalize_recovery_code(" demo-0alice 0recovery00001 "),
            "DEMO0ALICE0RECOVERY00001"
        );
        assert_eq!(new_recovery_code().len(), RECOVERY_CODE_LEN);
    }
}
