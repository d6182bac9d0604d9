//! `GET /.well-known/openid-configuration` and `GET /.well-known/jwks.json`, shaped like Auth0's documents.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::AppState;

/// Scopes the discovery document lists.
pub const SCOPES_SUPPORTED: [&str; 11] = [
    "openid",
    "profile",
    "offline_access",
    "name",
    "given_name",
    "family_name",
    "nickname",
    "email",
    "email_verified",
    "picture",
    "created_at",
];

/// The discovery document of the tenant at `base` (no trailing slash).
pub fn document(base: &str) -> Value {
    json!({
        "issuer": format!("{base}/"),
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "end_session_endpoint": format!("{base}/oidc/logout"),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "claims_supported": [
            "aud", "auth_time", "created_at", "email", "email_verified", "exp", "family_name", "given_name",
            "iat", "identities", "iss", "name", "nickname", "phone_number", "picture", "sub", "amr", "acr"
        ],
        "acr_values_supported": [companion_protocol::claims::MFA_ACR],
        "request_uri_parameter_supported": false,
        "request_parameter_supported": false,
    })
}

/// `GET /.well-known/openid-configuration`.
pub async fn openid_configuration(State(state): State<AppState>) -> impl IntoResponse {
    Json(document(&state.base_url))
}

/// `GET /.well-known/jwks.json`: the current key and retired keys still in their grace period.
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.keys.jwks(state.clock.unix()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_parses_as_the_protocol_type() {
        let doc = document("http://localhost:1");
        let parsed: companion_protocol::auth0::OidcDiscovery =
            serde_json::from_value(doc).expect("discovery parses");
        assert_eq!(
            parsed.issuer, "http://localhost:1/",
            "issuer has Auth0's slash"
        );
        assert_eq!(
            parsed.code_challenge_methods_supported,
            Some(vec!["S256".to_owned()]),
            "plain is not offered"
        );
    }
}
