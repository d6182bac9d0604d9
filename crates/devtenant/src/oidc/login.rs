//! The hosted login page: `GET /u/login?state=<tx>` shows a form with Auth0's field names (`username`,
//! `password`); `POST /u/login` checks the password, then continues to the MFA page or back to the application.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::AppState;
use crate::error::PageError;
use crate::pages::{escape, layout};
use crate::store::password_digest;

use super::LoginTransaction;
use super::authorize::{complete, has_usable_mfa, start_session};
use super::mfa::MFA_PATH;
use super::secret_eq;
use super::session::found;

/// Path of the login page.
pub const LOGIN_PATH: &str = "/u/login";

/// Shown for an unknown user or a wrong password alike, as Auth0 does.
pub const WRONG_CREDENTIALS: &str = "Wrong email or password.";

/// Query of the hosted pages: the login transaction.
#[derive(Debug, Deserialize)]
pub struct TxQuery {
    /// The transaction id.
    pub state: Option<String>,
}

/// The page shown when a login transaction is unknown or expired.
pub fn expired() -> Response {
    PageError::bad_request(
        "Your login session expired",
        "This sign-in request is unknown or too old. Go back to the application and sign in again.",
    )
    .into_response()
}

fn form(
    state: &AppState,
    tx_id: &str,
    tx: &LoginTransaction,
    username: &str,
    error: Option<&str>,
) -> String {
    let app = state
        .store
        .read(|s| s.client(&tx.client_id).map(|c| c.name.clone()))
        .unwrap_or_default();
    let error = error
        .map(|e| {
            format!(
                r#"<p class="error" role="alert" id="error-message">{}</p>"#,
                escape(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Welcome</h1>
<p>Log in to continue to {app}.</p>
{error}
<form method="post" action="{action}">
<input type="hidden" name="state" value="{tx}">
<label for="username">Email address</label>
<input id="username" name="username" type="email" autocomplete="username" required value="{username}"{autofocus_user}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required{autofocus_password}>
<button type="submit" name="action" value="default">Continue</button>
</form>"#,
        app = escape(&app),
        action = LOGIN_PATH,
        tx = escape(tx_id),
        username = escape(username),
        autofocus_user = if username.is_empty() {
            " autofocus"
        } else {
            ""
        },
        autofocus_password = if username.is_empty() {
            ""
        } else {
            " autofocus"
        },
    );
    layout("Log in", &body)
}

/// `GET /u/login?state=<tx>`.
pub async fn page(State(state): State<AppState>, Query(query): Query<TxQuery>) -> Response {
    let Some(tx_id) = query.state else {
        return expired();
    };
    let Some(tx) = state.oidc.transaction(&tx_id, state.clock.unix()) else {
        return expired();
    };
    let hint = tx.login_hint.clone().unwrap_or_default();
    Html(form(&state, &tx_id, &tx, &hint, None)).into_response()
}

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    state: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `POST /u/login`.
pub async fn submit(State(state): State<AppState>, Form(login): Form<LoginForm>) -> Response {
    let now = state.clock.unix();
    let Some(tx_id) = login.state else {
        return expired();
    };
    let Some(tx) = state.oidc.transaction(&tx_id, now) else {
        return expired();
    };
    let username = login.username.trim();
    let user = state.store.read(|s| s.user_by_email(username).cloned());
    let Some(user) = user.filter(|u| {
        secret_eq(
            &password_digest(&u.user_id, &login.password),
            &u.password_digest,
        )
    }) else {
        tracing::info!("failed login");
        return (
            StatusCode::BAD_REQUEST,
            Html(form(&state, &tx_id, &tx, username, Some(WRONG_CREDENTIALS))),
        )
            .into_response();
    };
    if tx.mfa_requested && has_usable_mfa(&user) {
        state.oidc.update_transaction(&tx_id, |t| {
            t.user_id = Some(user.user_id.clone());
            t.auth_time = Some(now);
        });
        return found(&format!("{MFA_PATH}?state={tx_id}"), None);
    }
    let Some(tx) = state.oidc.take_transaction(&tx_id, now) else {
        return expired();
    };
    let location = complete(&state, tx, &user.user_id, now, None, false);
    found(
        &location,
        Some(start_session(&state, &user.user_id, now, None)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_debug_output_is_redacted() {
        let form = LoginForm {
            state: Some("tx".into()),
            username: "bob@example.com".into(),
            password: "hunter2-password".into(),
        };
        let debug = format!("{form:?}");
        assert!(!debug.contains("hunter2-password"), "{debug}");
    }
}
