//! Claims and signing of the tokens the tenant issues: user access tokens (design.md §4), ID tokens and
//! machine-to-machine access tokens, as Auth0 shapes them.

use axum::http::StatusCode;
use companion_protocol::claims::{AUTH_TIME_CLAIM, MFA_ACR, MFA_TIME_CLAIM};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::OAuthError;
use crate::store::User;
use crate::world::ApiSeed;

use super::{DEFAULT_ACCESS_TTL_SECONDS, ID_TOKEN_TTL_SECONDS};

/// The grant audience that stands for this tenant's Management API in the world file.
pub const MGMT_GRANT_AUDIENCE: &str = "mgmt";

/// What an API audience resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedApi {
    /// The identifier, as it goes into `aud`.
    pub identifier: String,
    /// Access-token lifetime in seconds.
    pub token_lifetime: i64,
    /// Whether refresh tokens may be issued for it.
    pub allow_offline_access: bool,
    /// The scopes (permissions) it defines.
    pub scopes: Vec<String>,
    /// Whether this is the Management API.
    pub is_mgmt: bool,
}

impl ResolvedApi {
    fn from_seed(api: &ApiSeed) -> Self {
        Self {
            identifier: api.identifier.clone(),
            token_lifetime: i64::try_from(api.token_lifetime).unwrap_or(DEFAULT_ACCESS_TTL_SECONDS),
            allow_offline_access: api.allow_offline_access,
            scopes: api.scopes.clone(),
            is_mgmt: false,
        }
    }
}

/// Resolves `audience` to a custom API or this tenant's Management API.
pub fn resolve_api(state: &AppState, audience: &str) -> Option<ResolvedApi> {
    if audience == state.mgmt_audience() {
        return Some(ResolvedApi {
            identifier: audience.to_owned(),
            token_lifetime: DEFAULT_ACCESS_TTL_SECONDS,
            allow_offline_access: false,
            scopes: Vec::new(),
            is_mgmt: true,
        });
    }
    state.store.read(|s| {
        s.apis
            .iter()
            .find(|a| a.identifier == audience)
            .map(ResolvedApi::from_seed)
    })
}

/// Whether a client grant's `audience` (world-file spelling) means `api`.
pub fn grant_matches(grant_audience: &str, api: &ResolvedApi) -> bool {
    if api.is_mgmt {
        grant_audience == MGMT_GRANT_AUDIENCE || grant_audience == api.identifier
    } else {
        grant_audience == api.identifier
    }
}

/// The `/userinfo` audience of the tenant.
pub fn userinfo_audience(state: &AppState) -> String {
    format!("{}/userinfo", state.base_url)
}

/// Everything a user token depends on.
#[derive(Debug, Clone)]
pub struct UserGrant<'a> {
    /// The user.
    pub user: &'a User,
    /// The client.
    pub client_id: &'a str,
    /// Granted scopes.
    pub scope: &'a [String],
    /// The API, if an audience was requested.
    pub api: Option<&'a ResolvedApi>,
    /// When the user last authenticated in this session.
    pub auth_time: i64,
    /// When the user last passed MFA in this session.
    pub mfa_time: Option<i64>,
    /// Whether the token comes from a refresh-token exchange.
    pub from_refresh: bool,
}

impl UserGrant<'_> {
    fn has_scope(&self, scope: &str) -> bool {
        self.scope.iter().any(|s| s == scope)
    }
}

fn sign(state: &AppState, claims: &Value) -> Result<String, OAuthError> {
    state.keys.sign("JWT", claims).map_err(|error| {
        tracing::error!(%error, "cannot sign a token");
        OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The token could not be signed.",
        )
    })
}

/// A user access token and its lifetime in seconds.
///
/// # Errors
/// `server_error` when signing fails.
pub fn user_access_token(
    state: &AppState,
    grant: &UserGrant<'_>,
) -> Result<(String, i64), OAuthError> {
    let now = state.clock.unix();
    let userinfo = userinfo_audience(state);
    let (aud, lifetime) = match grant.api {
        Some(api) if grant.has_scope("openid") => {
            (json!([api.identifier, userinfo]), api.token_lifetime)
        }
        Some(api) => (json!(api.identifier), api.token_lifetime),
        None => (json!(userinfo), DEFAULT_ACCESS_TTL_SECONDS),
    };
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(state.issuer()));
    claims.insert("sub".into(), json!(grant.user.user_id));
    claims.insert("aud".into(), aud);
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + lifetime));
    claims.insert("scope".into(), json!(grant.scope.join(" ")));
    claims.insert("azp".into(), json!(grant.client_id));
    if grant.from_refresh {
        claims.insert("gty".into(), json!("refresh_token"));
    }
    claims.insert(AUTH_TIME_CLAIM.into(), json!(grant.auth_time));
    if let Some(mfa_time) = grant.mfa_time {
        claims.insert(MFA_TIME_CLAIM.into(), json!(mfa_time));
    }
    Ok((sign(state, &Value::Object(claims))?, lifetime))
}

/// What only an ID token needs.
#[derive(Debug, Clone, Default)]
pub struct IdTokenExtras<'a> {
    /// The `nonce` from `/authorize`.
    pub nonce: Option<&'a str>,
    /// Whether to include `auth_time`.
    pub include_auth_time: bool,
    /// Whether MFA happened in this very login (adds `amr: ["mfa"]` and `acr`).
    pub mfa_now: bool,
}

/// An ID token for `grant` with `extras`.
///
/// # Errors
/// `server_error` when signing fails.
pub fn id_token(
    state: &AppState,
    grant: &UserGrant<'_>,
    extras: &IdTokenExtras<'_>,
) -> Result<String, OAuthError> {
    let now = state.clock.unix();
    let user = grant.user;
    let mut claims = Map::new();
    if grant.has_scope("profile") {
        let nickname = user.email.split('@').next().unwrap_or_default();
        claims.insert("nickname".into(), json!(nickname));
        claims.insert("name".into(), json!(user.name));
    }
    if grant.has_scope("email") {
        claims.insert("email".into(), json!(user.email));
        claims.insert("email_verified".into(), json!(true));
    }
    claims.insert("iss".into(), json!(state.issuer()));
    claims.insert("aud".into(), json!(grant.client_id));
    claims.insert("sub".into(), json!(user.user_id));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + ID_TOKEN_TTL_SECONDS));
    if extras.include_auth_time {
        claims.insert("auth_time".into(), json!(grant.auth_time));
    }
    if extras.mfa_now {
        claims.insert("amr".into(), json!(["mfa"]));
        claims.insert("acr".into(), json!(MFA_ACR));
    }
    if let Some(nonce) = extras.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    sign(state, &Value::Object(claims))
}

/// A machine-to-machine access token for `client_id` at `api` with `scope`, and its lifetime in seconds.
///
/// # Errors
/// `server_error` when signing fails.
pub fn m2m_access_token(
    state: &AppState,
    client_id: &str,
    api: &ResolvedApi,
    scope: &[String],
) -> Result<(String, i64), OAuthError> {
    let now = state.clock.unix();
    let claims = json!({
        "iss": state.issuer(),
        "sub": format!("{client_id}@clients"),
        "aud": api.identifier,
        "iat": now,
        "exp": now + api.token_lifetime,
        "scope": scope.join(" "),
        "gty": "client-credentials",
        "azp": client_id,
    });
    Ok((sign(state, &claims)?, api.token_lifetime))
}
