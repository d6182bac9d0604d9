//! `GET /authorize`: validates the request as Auth0 does, then either answers from the SSO session or starts a
//! login transaction and sends the browser to the hosted login (or MFA) page.
//!
//! Until the client and the `redirect_uri` are validated, errors are HTML pages (never a redirect to an
//! unvalidated URL); after that they redirect back with `error`, `error_description` and `state`.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use companion_protocol::claims::MFA_ACR;
use serde::Deserialize;
use url::Url;

use crate::AppState;
use crate::error::PageError;
use crate::store::{MethodSecret, User};

use super::session::{self, found, set_cookie};
use super::tokens::{self, ResolvedApi};
use super::{AuthCode, BrowserSession, CODE_TTL_SECONDS, LoginTransaction, SESSION_TTL_SECONDS};

/// The OIDC scopes a user token may carry besides the API's own.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Query of `GET /authorize`.
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    audience: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    prompt: Option<String>,
    max_age: Option<String>,
    acr_values: Option<String>,
    login_hint: Option<String>,
    response_mode: Option<String>,
}

/// `redirect_uri` with `params` appended to its query.
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut pairs = url.query_pairs_mut();
                for (k, v) in params {
                    pairs.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

/// Redirects back to the (validated) `redirect_uri` with an OAuth error.
fn error_redirect(
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    found(&redirect_with(redirect_uri, &params), None)
}

/// Whether `user` has a method the tenant can challenge for MFA (TOTP, recovery code, a stored WebAuthn
/// credential).
pub fn has_usable_mfa(user: &User) -> bool {
    user.methods.iter().any(|m| {
        m.method.confirmed != Some(false)
            && matches!(
                m.secret,
                Some(
                    MethodSecret::Totp { .. }
                        | MethodSecret::RecoveryCode { .. }
                        | MethodSecret::Webauthn { .. }
                )
            )
    })
}

/// Whether `challenge` looks like an S256 challenge: 43 base64url characters.
fn valid_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `GET /authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    // 1. The client and the redirect URI: errors are pages, never redirects.
    let Some(client_id) = query.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return PageError::bad_request(
            "Something went wrong",
            "invalid_request: Missing required parameter: client_id",
        )
        .into_response();
    };
    let Some(client) = state.store.read(|s| s.client(client_id).cloned()) else {
        return PageError::bad_request(
            "Something went wrong",
            format!("invalid_request: Unknown client: {client_id}"),
        )
        .into_response();
    };
    let (redirect_uri, redirect_uri_sent) = match query.redirect_uri.as_deref() {
        Some(uri) if client.callbacks.iter().any(|c| c == uri) => (uri.to_owned(), true),
        Some(uri) => {
            return PageError::bad_request(
                "Callback URL mismatch",
                format!(
                    "Callback URL mismatch. {uri} is not in the list of allowed callback URLs. Please go to the Application Settings page and make sure you are sending a valid callback url from your application."
                ),
            )
            .into_response();
        }
        None => match client.callbacks.first() {
            Some(first) => (first.clone(), false),
            None => {
                return PageError::bad_request(
                    "Callback URL mismatch",
                    "The application has no allowed callback URLs.",
                )
                .into_response();
            }
        },
    };
    let client_state = query.state.clone();
    let fail = |error: &str, description: &str| {
        error_redirect(&redirect_uri, client_state.as_deref(), error, description)
    };

    // 2. The protocol parameters.
    if query.response_mode.as_deref().is_some_and(|m| m != "query") {
        return fail(
            "invalid_request",
            "Unsupported response_mode: only query is supported by this tenant",
        );
    }
    match query.response_type.as_deref() {
        None | Some("") => {
            return fail(
                "invalid_request",
                "Missing required parameter: response_type",
            );
        }
        Some("code") => {}
        Some(other) => {
            return fail(
                "unsupported_response_type",
                &format!("Unsupported response type: {other}"),
            );
        }
    }
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return fail(
            "unauthorized_client",
            "Grant type 'authorization_code' not allowed for the client.",
        );
    }
    let Some(code_challenge) = query.code_challenge.as_deref().filter(|c| !c.is_empty()) else {
        return fail(
            "invalid_request",
            "Parameter 'code_challenge' is required (PKCE with S256)",
        );
    };
    match query.code_challenge_method.as_deref() {
        Some("S256") => {}
        None | Some("") => {
            return fail(
                "invalid_request",
                "Parameter 'code_challenge_method' is required; only S256 is supported",
            );
        }
        Some(other) => {
            return fail(
                "invalid_request",
                &format!("Unsupported code_challenge_method: {other}; only S256 is supported"),
            );
        }
    }
    if !valid_s256_challenge(code_challenge) {
        return fail(
            "invalid_request",
            "Parameter 'code_challenge' must be a BASE64URL-encoded SHA-256 hash (43 characters)",
        );
    }
    let api: Option<ResolvedApi> = match query.audience.as_deref().filter(|a| !a.is_empty()) {
        Some(audience) => match tokens::resolve_api(&state, audience) {
            Some(api) => Some(api),
            None => return fail("access_denied", &format!("Service not found: {audience}")),
        },
        None => None,
    };
    let offline_ok = client.grant_types.iter().any(|g| g == "refresh_token")
        && api.as_ref().is_none_or(|a| a.allow_offline_access);
    let mut scope: Vec<String> = Vec::new();
    for s in query
        .scope
        .as_deref()
        .unwrap_or_default()
        .split_ascii_whitespace()
    {
        let known = OIDC_SCOPES.contains(&s)
            || api
                .as_ref()
                .is_some_and(|a| a.scopes.iter().any(|x| x == s));
        if known && (s != "offline_access" || offline_ok) && !scope.iter().any(|x| x == s) {
            scope.push(s.to_owned());
        }
    }
    let max_age = match query.max_age.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(value) if value >= 0 => Some(value),
            _ => {
                return fail(
                    "invalid_request",
                    "Parameter 'max_age' must be a non-negative integer",
                );
            }
        },
    };
    let prompts: Vec<&str> = query
        .prompt
        .as_deref()
        .unwrap_or_default()
        .split_ascii_whitespace()
        .collect();
    if let Some(bad) = prompts
        .iter()
        .find(|p| !matches!(**p, "none" | "login" | "consent" | "select_account"))
    {
        return fail("invalid_request", &format!("Unsupported prompt: {bad}"));
    }
    let prompt_none = prompts.contains(&"none");
    let prompt_login = prompts.contains(&"login");
    if prompt_none && prompts.len() > 1 {
        return fail(
            "invalid_request",
            "prompt=none cannot be combined with other prompt values",
        );
    }
    let acr_mfa = query
        .acr_values
        .as_deref()
        .unwrap_or_default()
        .split_ascii_whitespace()
        .any(|v| v == MFA_ACR);
    let policy_mfa = state.store.read(|s| {
        s.settings
            .mfa_policies
            .iter()
            .any(|p| p == "all-applications")
    });
    let now = state.clock.unix();
    let tx = LoginTransaction {
        client_id: client.client_id,
        redirect_uri: redirect_uri.clone(),
        redirect_uri_sent,
        state: client_state.clone(),
        nonce: query.nonce.clone(),
        scope,
        audience: api.map(|a| a.identifier),
        code_challenge: code_challenge.to_owned(),
        include_auth_time: max_age.is_some() || prompt_login,
        mfa_requested: acr_mfa || policy_mfa,
        login_hint: query.login_hint.clone(),
        created_at: now,
        user_id: None,
        auth_time: None,
    };

    // 3. The SSO session, if it is still good enough.
    let sso = session::current(&state, &headers).and_then(|(_, s)| {
        let user = state.store.read(|st| st.user(&s.user_id).cloned())?;
        let fresh = match max_age {
            Some(0) => false,
            Some(max) => now - s.auth_time <= max,
            None => true,
        };
        (fresh && !prompt_login).then_some((s, user))
    });
    match sso {
        Some((s, user)) => {
            let needs_mfa = tx.mfa_requested && has_usable_mfa(&user) && s.mfa_time.is_none();
            if !needs_mfa {
                let location = complete(&state, tx, &user.user_id, s.auth_time, s.mfa_time, false);
                return found(&location, None);
            }
            if prompt_none {
                return fail(
                    "interaction_required",
                    "Multifactor authentication required",
                );
            }
            let tx = LoginTransaction {
                user_id: Some(user.user_id),
                auth_time: Some(s.auth_time),
                ..tx
            };
            let id = state.oidc.insert_transaction(tx, now);
            found(&format!("{}?state={id}", super::mfa::MFA_PATH), None)
        }
        None if prompt_none => fail("login_required", "Login required"),
        None => {
            let id = state.oidc.insert_transaction(tx, now);
            found(&format!("{}?state={id}", super::login::LOGIN_PATH), None)
        }
    }
}

/// Finishes a login: issues an authorization code for `tx` and returns the redirect URI carrying `code` and
/// `state`.
pub fn complete(
    state: &AppState,
    tx: LoginTransaction,
    user_id: &str,
    auth_time: i64,
    mfa_time: Option<i64>,
    mfa_now: bool,
) -> String {
    let now = state.clock.unix();
    let code = AuthCode {
        client_id: tx.client_id,
        redirect_uri: tx.redirect_uri.clone(),
        redirect_uri_sent: tx.redirect_uri_sent,
        code_challenge: tx.code_challenge,
        user_id: user_id.to_owned(),
        scope: tx.scope,
        audience: tx.audience,
        nonce: tx.nonce,
        auth_time,
        mfa_time,
        mfa_now,
        include_auth_time: tx.include_auth_time,
        expires_at: now + CODE_TTL_SECONDS,
    };
    let value = state.oidc.insert_code(code, now);
    let mut params = vec![("code", value.as_str())];
    if let Some(client_state) = tx.state.as_deref() {
        params.push(("state", client_state));
    }
    redirect_with(&tx.redirect_uri, &params)
}

/// Starts a fresh SSO session after an interactive login; returns its `Set-Cookie` value.
pub fn start_session(
    state: &AppState,
    user_id: &str,
    auth_time: i64,
    mfa_time: Option<i64>,
) -> axum::http::HeaderValue {
    let now = state.clock.unix();
    let value = state.oidc.insert_session(
        BrowserSession {
            user_id: user_id.to_owned(),
            auth_time,
            mfa_time,
            expires_at: now + SESSION_TTL_SECONDS,
        },
        now,
    );
    set_cookie(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_append_to_an_existing_query() {
        assert_eq!(
            redirect_with(
                "http://127.0.0.1:53180/callback",
                &[("code", "a b"), ("state", "s&t")]
            ),
            "http://127.0.0.1:53180/callback?code=a+b&state=s%26t"
        );
        assert_eq!(
            redirect_with("http://127.0.0.1:1/cb?x=1", &[("code", "c")]),
            "http://127.0.0.1:1/cb?x=1&code=c"
        );
    }

    #[test]
    fn only_s256_shaped_challenges_pass() {
        assert!(valid_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!valid_s256_challenge("short"));
        assert!(!valid_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"
        ));
    }
}
