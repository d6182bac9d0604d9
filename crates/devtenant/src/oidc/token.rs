//! `POST /oauth/token` (`authorization_code` with PKCE S256, `refresh_token` with rotation and reuse detection,
//! `client_credentials` with client grants) and `POST /oauth/revoke`.
//!
//! Both accept `application/x-www-form-urlencoded` and `application/json` bodies, as Auth0 does, and client
//! authentication by `client_secret` in the body or HTTP Basic. Errors use Auth0's bodies and statuses
//! ([`OAuthError`]); every answer carries `Cache-Control: no-store`.

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use companion_protocol::auth0::TokenResponse;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};

use crate::AppState;
use crate::error::OAuthError;
use crate::store::{RefreshRecord, digest};
use crate::world::ClientSeed;

use super::tokens::{self, IdTokenExtras, ResolvedApi, UserGrant};
use super::{REFRESH_TTL_SECONDS, random_token, secret_eq};

/// A request body that is either form-urlencoded or JSON, chosen by `Content-Type`.
#[derive(Debug, Clone)]
pub struct OAuthBody<T>(pub T);

impl<S, T> FromRequest<S> for OAuthBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if is_json {
            Json::<T>::from_request(req, state)
                .await
                .map(|Json(body)| Self(body))
                .map_err(|_| OAuthError::invalid_request("The request body is not valid JSON."))
        } else {
            Form::<T>::from_request(req, state)
                .await
                .map(|Form(body)| Self(body))
                .map_err(|_| OAuthError::invalid_request("The request body is not a valid form."))
        }
    }
}

/// The parameters of `/oauth/token` (all grants).
#[derive(Default, Deserialize)]
pub struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    audience: Option<String>,
    scope: Option<String>,
    code: Option<String>,
    code_verifier: Option<String>,
    redirect_uri: Option<String>,
    refresh_token: Option<String>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// `POST /oauth/token`.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthBody(request): OAuthBody<TokenRequest>,
) -> Response {
    let result = match request.grant_type.as_deref() {
        None | Some("") => Err(OAuthError::invalid_request(
            "Missing required parameter: grant_type",
        )),
        Some("client_credentials") => client_credentials(&state, &headers, &request),
        Some("authorization_code") => authorization_code(&state, &headers, &request),
        Some("refresh_token") => refresh_token(&state, &headers, &request),
        Some(other) => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("Unsupported grant type: {other}"),
        )),
    };
    match result {
        Ok(body) => no_store(Json(body).into_response()),
        Err(error) => error.into_response(),
    }
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `(client_id, client_secret)` from HTTP Basic, if sent.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .unwrap_or_else(|_| s.to_owned())
    };
    Some((decode(id), decode(secret)))
}

/// Identifies the client and checks its secret when it has one (confidential clients); public clients need
/// none. The client must allow `grant_type`.
fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    client_id: Option<&str>,
    client_secret: Option<&str>,
    grant_type: Option<&str>,
) -> Result<ClientSeed, OAuthError> {
    let basic = basic_credentials(headers);
    let client_id = client_id
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: client_id"))?;
    let secret = client_secret
        .map(str::to_owned)
        .or_else(|| basic.map(|(_, secret)| secret));
    let client = state
        .store
        .read(|s| s.client(&client_id).cloned())
        .ok_or_else(|| OAuthError::invalid_client("Unknown client."))?;
    if let Some(expected) = &client.client_secret {
        match secret {
            Some(given) if secret_eq(&given, expected) => {}
            Some(_) => return Err(OAuthError::invalid_client("Client authentication failed.")),
            None => {
                return Err(OAuthError::invalid_client(
                    "Client authentication is required.",
                ));
            }
        }
    }
    if let Some(grant_type) = grant_type
        && !client.grant_types.iter().any(|g| g == grant_type)
    {
        return Err(OAuthError::unauthorized_client(format!(
            "Grant type '{grant_type}' not allowed for the client."
        )));
    }
    Ok(client)
}

fn split_scope(scope: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.unwrap_or_default().split_ascii_whitespace() {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

fn token_response(
    access_token: String,
    expires_in: i64,
    scope: &[String],
    id_token: Option<String>,
    refresh_token: Option<String>,
) -> TokenResponse {
    TokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: u64::try_from(expires_in).unwrap_or_default(),
        id_token,
        refresh_token,
        scope: (!scope.is_empty()).then(|| scope.join(" ")),
    }
}

fn client_credentials(
    state: &AppState,
    headers: &HeaderMap,
    request: &TokenRequest,
) -> Result<TokenResponse, OAuthError> {
    let client = authenticate_client(
        state,
        headers,
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
        None,
    )?;
    if client.client_secret.is_none() {
        return Err(OAuthError::unauthorized_client(
            "Grant type 'client_credentials' not allowed for the client.",
        ));
    }
    if !client.grant_types.iter().any(|g| g == "client_credentials") {
        return Err(OAuthError::unauthorized_client(
            "Grant type 'client_credentials' not allowed for the client.",
        ));
    }
    let audience = request
        .audience
        .as_deref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            OAuthError::access_denied(
                "No audience parameter was provided, and no default audience has been configured",
            )
        })?;
    let api = tokens::resolve_api(state, audience)
        .ok_or_else(|| OAuthError::access_denied(format!("Service not found: {audience}")))?;
    let granted: Option<Vec<String>> = state.store.read(|s| {
        s.grants
            .iter()
            .find(|g| g.client_id == client.client_id && tokens::grant_matches(&g.audience, &api))
            .map(|g| g.scope.clone())
    });
    let granted = granted.ok_or_else(|| {
        OAuthError::access_denied(format!(
            "Client is not authorized to access \"{audience}\". You need to create a \"client-grant\" associated to this API."
        ))
    })?;
    let scope = match request.scope.as_deref().filter(|s| !s.trim().is_empty()) {
        None => granted,
        Some(asked) => {
            let asked = split_scope(Some(asked));
            let missing: Vec<&str> = asked
                .iter()
                .filter(|s| !granted.contains(s))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(OAuthError::access_denied(format!(
                    "Client has not been granted scopes: {}",
                    missing.join(", ")
                )));
            }
            asked
        }
    };
    let (access_token, expires_in) =
        tokens::m2m_access_token(state, &client.client_id, &api, &scope)?;
    Ok(token_response(access_token, expires_in, &scope, None, None))
}

/// `BASE64URL(SHA256(verifier))`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` is a valid RFC 7636 code verifier (43 to 128 unreserved characters).
fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn revoke_family(state: &AppState, family: &str) {
    state.store.write(|s| {
        s.revoked_families.insert(family.to_owned());
        s.refresh_tokens.retain(|_, r| r.family != family);
    });
}

fn authorization_code(
    state: &AppState,
    headers: &HeaderMap,
    request: &TokenRequest,
) -> Result<TokenResponse, OAuthError> {
    let client = authenticate_client(
        state,
        headers,
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
        Some("authorization_code"),
    )?;
    let code_value = request
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: code"))?;
    let now = state.clock.unix();
    let code = match state.oidc.take_code(code_value, now) {
        Ok(Some(code)) => code,
        Ok(None) => return Err(OAuthError::invalid_grant("Invalid authorization code")),
        Err(family) => {
            // Reuse of a code: revoke what was issued from it, as RFC 6749 §4.1.2 suggests.
            if let Some(family) = family {
                revoke_family(state, &family);
            }
            tracing::warn!(client_id = %client.client_id, "authorization code reused");
            return Err(OAuthError::invalid_grant("Invalid authorization code"));
        }
    };
    if code.expires_at <= now || code.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("Invalid authorization code"));
    }
    match (&request.redirect_uri, code.redirect_uri_sent) {
        (Some(uri), _) if *uri == code.redirect_uri => {}
        (None, false) => {}
        _ => {
            return Err(OAuthError::invalid_grant(
                "The redirect_uri MUST match the registered callback URL for this application, and the one used at /authorize.",
            ));
        }
    }
    let verifier = request
        .code_verifier
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("Parameter 'code_verifier' is required"))?;
    if !valid_verifier(verifier) || !secret_eq(&s256(verifier), &code.code_challenge) {
        return Err(OAuthError::invalid_grant("Failed to verify code verifier"));
    }
    let user = state
        .store
        .read(|s| s.user(&code.user_id).cloned())
        .ok_or_else(|| OAuthError::invalid_grant("Invalid authorization code"))?;
    let api =
        match &code.audience {
            Some(audience) => Some(tokens::resolve_api(state, audience).ok_or_else(|| {
                OAuthError::access_denied(format!("Service not found: {audience}"))
            })?),
            None => None,
        };
    let grant = UserGrant {
        user: &user,
        client_id: &client.client_id,
        scope: &code.scope,
        api: api.as_ref(),
        auth_time: code.auth_time,
        mfa_time: code.mfa_time,
        from_refresh: false,
    };
    let (access_token, expires_in) = tokens::user_access_token(state, &grant)?;
    let id_token = if grant.scope.iter().any(|s| s == "openid") {
        Some(tokens::id_token(
            state,
            &grant,
            &IdTokenExtras {
                nonce: code.nonce.as_deref(),
                include_auth_time: code.include_auth_time,
                mfa_now: code.mfa_now,
            },
        )?)
    } else {
        None
    };
    let refresh = if offline_allowed(&client, grant.scope, api.as_ref()) {
        let family = random_token(16);
        let value = issue_refresh(
            state,
            RefreshRecord {
                family: family.clone(),
                client_id: client.client_id.clone(),
                user_id: user.user_id.clone(),
                audience: code.audience.clone(),
                scope: code.scope.join(" "),
                auth_time: code.auth_time,
                mfa_time: code.mfa_time,
                issued_at: now,
                expires_at: now + REFRESH_TTL_SECONDS,
                rotated: false,
            },
        );
        state.oidc.record_code_family(code_value, &family);
        Some(value)
    } else {
        None
    };
    Ok(token_response(
        access_token,
        expires_in,
        &code.scope,
        id_token,
        refresh,
    ))
}

/// Whether a refresh token may be issued: `offline_access` granted, the client may use the grant, and the API
/// (if any) allows offline access.
fn offline_allowed(client: &ClientSeed, scope: &[String], api: Option<&ResolvedApi>) -> bool {
    scope.iter().any(|s| s == "offline_access")
        && client.grant_types.iter().any(|g| g == "refresh_token")
        && api.is_none_or(|a| a.allow_offline_access)
}

/// Stores `record` under a fresh refresh token's digest; returns the token.
fn issue_refresh(state: &AppState, record: RefreshRecord) -> String {
    let value = random_token(32);
    let key = digest(&value);
    let now = record.issued_at;
    state.store.write(|s| {
        s.refresh_tokens.retain(|_, r| r.expires_at > now);
        s.refresh_tokens.insert(key, record);
    });
    value
}

/// Why a refresh token was refused; every case answers the same `invalid_grant`.
enum RefreshRefusal {
    Invalid,
    Reused,
}

fn refresh_token(
    state: &AppState,
    headers: &HeaderMap,
    request: &TokenRequest,
) -> Result<TokenResponse, OAuthError> {
    let client = authenticate_client(
        state,
        headers,
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
        Some("refresh_token"),
    )?;
    let presented = request
        .refresh_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: refresh_token"))?;
    let now = state.clock.unix();
    let key = digest(presented);
    let asked = split_scope(request.scope.as_deref());
    let new_value = random_token(32);
    let new_key = digest(&new_value);
    // Check, rotate and issue in one transaction so two concurrent exchanges cannot both succeed.
    let outcome = state.store.write(|s| {
        let Some(record) = s.refresh_tokens.get(&key).cloned() else {
            return Err(RefreshRefusal::Invalid);
        };
        if record.client_id != client.client_id
            || s.revoked_families.contains(&record.family)
            || record.expires_at <= now
        {
            return Err(RefreshRefusal::Invalid);
        }
        if record.rotated {
            s.revoked_families.insert(record.family.clone());
            s.refresh_tokens.retain(|_, r| r.family != record.family);
            return Err(RefreshRefusal::Reused);
        }
        let granted = split_scope(Some(&record.scope));
        if asked.iter().any(|a| !granted.contains(a)) {
            return Ok(Err(OAuthError::new(
                StatusCode::FORBIDDEN,
                "invalid_scope",
                "The requested scope exceeds the scope granted by the resource owner.",
            )));
        }
        if let Some(old) = s.refresh_tokens.get_mut(&key) {
            old.rotated = true;
        }
        let mut fresh = record.clone();
        fresh.issued_at = now;
        fresh.rotated = false;
        s.refresh_tokens.insert(new_key.clone(), fresh);
        Ok(Ok(record))
    });
    let record = match outcome {
        Ok(Ok(record)) => record,
        Ok(Err(error)) => return Err(error),
        Err(RefreshRefusal::Invalid) => {
            return Err(OAuthError::invalid_grant(
                "Unknown or invalid refresh token.",
            ));
        }
        Err(RefreshRefusal::Reused) => {
            tracing::warn!(client_id = %client.client_id, "rotated refresh token reused; family revoked");
            return Err(OAuthError::invalid_grant(
                "Unknown or invalid refresh token.",
            ));
        }
    };
    let scope = if asked.is_empty() {
        split_scope(Some(&record.scope))
    } else {
        asked
    };
    let user = state
        .store
        .read(|s| s.user(&record.user_id).cloned())
        .ok_or_else(|| OAuthError::invalid_grant("Unknown or invalid refresh token."))?;
    let api = record
        .audience
        .as_deref()
        .and_then(|a| tokens::resolve_api(state, a));
    let grant = UserGrant {
        user: &user,
        client_id: &client.client_id,
        scope: &scope,
        api: api.as_ref(),
        auth_time: record.auth_time,
        mfa_time: record.mfa_time,
        from_refresh: true,
    };
    let (access_token, expires_in) = tokens::user_access_token(state, &grant)?;
    let id_token = if scope.iter().any(|s| s == "openid") {
        Some(tokens::id_token(state, &grant, &IdTokenExtras::default())?)
    } else {
        None
    };
    Ok(token_response(
        access_token,
        expires_in,
        &scope,
        id_token,
        Some(new_value),
    ))
}

/// The parameters of `/oauth/revoke`.
#[derive(Default, Deserialize)]
pub struct RevokeRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    token: Option<String>,
}

impl std::fmt::Debug for RevokeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeRequest")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// `POST /oauth/revoke`: revokes the refresh token's whole family; 200 with an empty body, also for unknown
/// tokens (RFC 7009).
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthBody(request): OAuthBody<RevokeRequest>,
) -> Response {
    let client = match authenticate_client(
        &state,
        &headers,
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
        None,
    ) {
        Ok(client) => client,
        Err(error) => return error.into_response(),
    };
    let Some(token) = request.token.as_deref().filter(|t| !t.is_empty()) else {
        return OAuthError::invalid_request("Missing required parameter: token").into_response();
    };
    let key = digest(token);
    let family = state.store.read(|s| {
        s.refresh_tokens
            .get(&key)
            .filter(|r| r.client_id == client.client_id)
            .map(|r| r.family.clone())
    });
    if let Some(family) = family {
        revoke_family(&state, &family);
    }
    no_store(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_follow_rfc_7636() {
        assert!(valid_verifier(&"a".repeat(43)));
        assert!(!valid_verifier(&"a".repeat(42)), "too short");
        assert!(!valid_verifier(&"a".repeat(129)), "too long");
        assert!(!valid_verifier(&format!("{}+", "a".repeat(43))), "bad char");
    }

    #[test]
    fn request_debug_output_is_redacted() {
        let request = TokenRequest {
            grant_type: Some("authorization_code".into()),
            client_id: Some("c".into()),
            client_secret: Some("the-secret".into()),
            code: Some("the-code".into()),
            code_verifier: Some("the-verifier".into()),
            refresh_token: Some("the-refresh-token".into()),
            ..TokenRequest::default()
        };
        let debug = format!("{request:?}");
        for secret in [
            "the-secret",
            "the-code",
            "the-verifier",
            "the-refresh-token",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
        let revoke = RevokeRequest {
            client_id: Some("c".into()),
            client_secret: Some("the-secret".into()),
            token: Some("the-refresh-token".into()),
        };
        let debug = format!("{revoke:?}");
        assert!(
            !debug.contains("the-secret") && !debug.contains("the-refresh-token"),
            "{debug}"
        );
    }

    #[test]
    fn scopes_split_without_duplicates() {
        assert_eq!(
            split_scope(Some(" openid  email openid ")),
            ["openid", "email"]
        );
        assert!(split_scope(None).is_empty());
    }
}
