//! The Authentication API: discovery, JWKS, `/authorize` with the hosted login and MFA pages, `/oauth/token`,
//! `/oauth/revoke`, `/userinfo` and `/v2/logout`.
//!
//! Ephemeral state (login transactions, authorization codes, browser sessions) lives in [`OidcState`], in memory,
//! behind a std mutex that is never held across `.await`. Refresh tokens outlive a restart and live in the
//! [`crate::store::Store`], by digest only.
//!
//! Modules: [`discovery`] (discovery and JWKS), [`authorize`] (`/authorize`), [`login`] (the hosted login page),
//! [`mfa`] (the MFA challenge page), [`token`] (`/oauth/token` and `/oauth/revoke`), [`tokens`] (claims and
//! signing), [`session`] (the SSO cookie, `/userinfo` and `/v2/logout`).

pub mod authorize;
pub mod discovery;
pub mod login;
pub mod mfa;
pub mod session;
pub mod token;
pub mod tokens;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use axum::Router;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;

use crate::AppState;
use crate::store::digest;

/// Lifetime of an authorization code, in seconds of tenant time.
pub const CODE_TTL_SECONDS: i64 = 60;
/// Lifetime of a login transaction (the time a person has to sign in), in seconds of tenant time.
pub const TRANSACTION_TTL_SECONDS: i64 = 30 * 60;
/// Lifetime of a browser (SSO) session, in seconds of tenant time (Auth0's default absolute lifetime is 3 days).
pub const SESSION_TTL_SECONDS: i64 = 3 * 24 * 3600;
/// Absolute lifetime of a refresh-token family, in seconds (Auth0's default for rotating tokens: 30 days).
pub const REFRESH_TTL_SECONDS: i64 = 30 * 24 * 3600;
/// Lifetime of ID tokens, in seconds (Auth0's default: 10 hours).
pub const ID_TOKEN_TTL_SECONDS: i64 = 36_000;
/// Lifetime of access tokens for `/userinfo` only and for the Management API, in seconds.
pub const DEFAULT_ACCESS_TTL_SECONDS: i64 = 86_400;
/// At most this many entries of each kind are kept; beyond that the oldest are dropped.
const MAX_ENTRIES: usize = 10_000;

/// What the person asked for at `/authorize`, kept while they sign in.
#[derive(Debug, Clone)]
pub struct LoginTransaction {
    /// The client.
    pub client_id: String,
    /// The validated redirect URI.
    pub redirect_uri: String,
    /// Whether `redirect_uri` was sent (then the token request must repeat it).
    pub redirect_uri_sent: bool,
    /// The client's `state`, echoed on the redirect.
    pub state: Option<String>,
    /// The client's `nonce`, put into the ID token.
    pub nonce: Option<String>,
    /// Requested scopes (already filtered to what may be granted).
    pub scope: Vec<String>,
    /// The API identifier, if an audience was requested.
    pub audience: Option<String>,
    /// The S256 PKCE challenge.
    pub code_challenge: String,
    /// Whether the ID token must carry `auth_time` (`max_age` or `prompt=login` was sent).
    pub include_auth_time: bool,
    /// Whether this login must pass an MFA challenge (tenant policy or `acr_values`).
    pub mfa_requested: bool,
    /// `login_hint`, prefilled into the username field.
    pub login_hint: Option<String>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Set once the password was checked: who signs in.
    pub user_id: Option<String>,
    /// Set once the password was checked: when.
    pub auth_time: Option<i64>,
}

/// An issued authorization code, kept until it is exchanged or expires.
#[derive(Debug, Clone)]
pub struct AuthCode {
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI used at `/authorize`.
    pub redirect_uri: String,
    /// Whether `redirect_uri` was sent at `/authorize`.
    pub redirect_uri_sent: bool,
    /// The S256 PKCE challenge.
    pub code_challenge: String,
    /// The user.
    pub user_id: String,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// The API identifier, if any.
    pub audience: Option<String>,
    /// The `nonce` for the ID token.
    pub nonce: Option<String>,
    /// When the user last authenticated in this session.
    pub auth_time: i64,
    /// When the user last passed MFA in this session.
    pub mfa_time: Option<i64>,
    /// Whether MFA happened in this very login (then the ID token carries `amr` and `acr`).
    pub mfa_now: bool,
    /// Whether the ID token carries `auth_time`.
    pub include_auth_time: bool,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
}

/// A browser's SSO session.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    /// Who is signed in.
    pub user_id: String,
    /// When they last entered their password.
    pub auth_time: i64,
    /// When they last passed MFA, if ever in this session.
    pub mfa_time: Option<i64>,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
}

/// Ephemeral OIDC state: login transactions, authorization codes and browser sessions.
///
/// Its `Debug` output shows counts only: transaction ids are bearer secrets of a login in progress.
#[derive(Default)]
pub struct OidcState {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for OidcState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("OidcState")
            .field("transactions", &inner.transactions.len())
            .field("codes", &inner.codes.len())
            .field("sessions", &inner.sessions.len())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    /// Login transactions by id.
    transactions: HashMap<String, LoginTransaction>,
    /// Unused codes by digest.
    codes: HashMap<String, AuthCode>,
    /// Exchanged codes by digest: the refresh-token family issued from each (revoked on reuse), and expiry.
    used_codes: HashMap<String, (Option<String>, i64)>,
    /// Browser sessions by digest of the cookie value.
    sessions: HashMap<String, BrowserSession>,
}

impl OidcState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores a new login transaction; returns its id.
    pub fn insert_transaction(&self, tx: LoginTransaction, now: i64) -> String {
        let id = random_token(24);
        let mut inner = self.lock();
        inner
            .transactions
            .retain(|_, t| t.created_at + TRANSACTION_TTL_SECONDS > now);
        trim(&mut inner.transactions, |t| t.created_at);
        inner.transactions.insert(id.clone(), tx);
        id
    }

    /// The live transaction `id`.
    pub fn transaction(&self, id: &str, now: i64) -> Option<LoginTransaction> {
        self.lock()
            .transactions
            .get(id)
            .filter(|t| t.created_at + TRANSACTION_TTL_SECONDS > now)
            .cloned()
    }

    /// Updates the transaction `id` with `f`; `false` when it does not exist.
    pub fn update_transaction(&self, id: &str, f: impl FnOnce(&mut LoginTransaction)) -> bool {
        match self.lock().transactions.get_mut(id) {
            Some(tx) => {
                f(tx);
                true
            }
            None => false,
        }
    }

    /// Removes and returns the transaction `id` (single use at completion).
    pub fn take_transaction(&self, id: &str, now: i64) -> Option<LoginTransaction> {
        self.lock()
            .transactions
            .remove(id)
            .filter(|t| t.created_at + TRANSACTION_TTL_SECONDS > now)
    }

    /// Stores a new authorization code; returns the code.
    pub fn insert_code(&self, code: AuthCode, now: i64) -> String {
        let value = random_token(32);
        let mut inner = self.lock();
        inner.codes.retain(|_, c| c.expires_at > now);
        inner.used_codes.retain(|_, (_, until)| *until > now);
        trim(&mut inner.codes, |c| c.expires_at);
        inner.codes.insert(digest(&value), code);
        value
    }

    /// Takes the code `value` for exchange. `Err(Some(family))`/`Err(None)` when it was already exchanged (with the
    /// refresh-token family issued from it, if any); `Ok(None)` when it is unknown.
    pub fn take_code(&self, value: &str, now: i64) -> Result<Option<AuthCode>, Option<String>> {
        let key = digest(value);
        let mut inner = self.lock();
        if let Some((family, _)) = inner.used_codes.get(&key) {
            return Err(family.clone());
        }
        match inner.codes.remove(&key) {
            Some(code) => {
                // Remember the exchange for the code's would-be lifetime plus a margin, to detect reuse.
                inner
                    .used_codes
                    .insert(key, (None, now + 10 * CODE_TTL_SECONDS));
                Ok(Some(code))
            }
            None => Ok(None),
        }
    }

    /// Records the refresh-token family issued from the exchanged code `value`.
    pub fn record_code_family(&self, value: &str, family: &str) {
        if let Some(entry) = self.lock().used_codes.get_mut(&digest(value)) {
            entry.0 = Some(family.to_owned());
        }
    }

    /// Starts or replaces a browser session; returns the cookie value.
    pub fn insert_session(&self, session: BrowserSession, now: i64) -> String {
        let value = random_token(32);
        let mut inner = self.lock();
        inner.sessions.retain(|_, s| s.expires_at > now);
        trim(&mut inner.sessions, |s| s.expires_at);
        inner.sessions.insert(digest(&value), session);
        value
    }

    /// The live session of cookie value `value`.
    pub fn session(&self, value: &str, now: i64) -> Option<BrowserSession> {
        self.lock()
            .sessions
            .get(&digest(value))
            .filter(|s| s.expires_at > now)
            .cloned()
    }

    /// Ends the session of cookie value `value`.
    pub fn remove_session(&self, value: &str) {
        self.lock().sessions.remove(&digest(value));
    }
}

/// Drops the entries with the smallest `key` until there is room for one more.
fn trim<V>(map: &mut HashMap<String, V>, key: impl Fn(&V) -> i64) {
    while map.len() >= MAX_ENTRIES {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, v)| key(v))
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        map.remove(&oldest);
    }
}

/// A random URL-safe token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Constant-time equality of two secrets (compared through their SHA-256 digests, so lengths do not leak).
pub fn secret_eq(a: &str, b: &str) -> bool {
    use sha2::{Digest as _, Sha256};
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

/// The Authentication API routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route("/authorize", get(authorize::authorize))
        .route(login::LOGIN_PATH, get(login::page).post(login::submit))
        .route(mfa::MFA_PATH, get(mfa::page).post(mfa::submit))
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(token::revoke))
        .route("/userinfo", get(session::userinfo).post(session::userinfo))
        .route("/v2/logout", get(session::logout))
        .route("/oidc/logout", get(session::oidc_logout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_no_ids() {
        let state = OidcState::default();
        let session = state.insert_session(
            BrowserSession {
                user_id: "auth0|u".into(),
                auth_time: 0,
                mfa_time: None,
                expires_at: 100,
            },
            0,
        );
        let debug = format!("{state:?}");
        assert!(!debug.contains(&session), "{debug}");
        assert!(!debug.contains(&digest(&session)), "{debug}");
        assert!(debug.contains("sessions: 1"), "{debug}");
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(secret_eq("demo-proxy-secret", "demo-proxy-secret"));
        assert!(!secret_eq("demo-proxy-secret", "demo-proxy-secreT"));
        assert!(!secret_eq("", "x"));
    }

    #[test]
    fn codes_are_single_use_and_remember_their_family() {
        let state = OidcState::default();
        let code = AuthCode {
            client_id: "c".into(),
            redirect_uri: "http://127.0.0.1:1/cb".into(),
            redirect_uri_sent: true,
            code_challenge: "x".into(),
            user_id: "u".into(),
            scope: vec![],
            audience: None,
            nonce: None,
            auth_time: 0,
            mfa_time: None,
            mfa_now: false,
            include_auth_time: false,
            expires_at: 100,
        };
        let value = state.insert_code(code, 0);
        assert!(matches!(state.take_code(&value, 1), Ok(Some(_))));
        state.record_code_family(&value, "fam");
        assert_eq!(
            state.take_code(&value, 2).err(),
            Some(Some("fam".to_owned())),
            "a reused code names its family"
        );
        assert!(matches!(state.take_code("nope", 2), Ok(None)));
    }
}
