//! OpenID Connect discovery (`/.well-known/openid-configuration`) and JSON Web Key Sets (`/.well-known/jwks.json`).

use serde::{Deserialize, Serialize};

/// The subset of an OIDC discovery document Passkey Companion reads; unknown members are ignored.
///
/// Only `issuer` and `jwks_uri` are required (a minimal document still parses); everything else is optional and
/// omitted when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcDiscovery {
    /// Issuer, with Auth0's trailing slash (`https://tenant.auth0.com/`).
    pub issuer: String,
    /// `/authorize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// `/oauth/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// `/oauth/device/code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    /// `/userinfo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// `/mfa/challenge` (Auth0 extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_challenge_endpoint: Option<String>,
    /// `/.well-known/jwks.json`.
    pub jwks_uri: String,
    /// `/oidc/register`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// `/oauth/revoke`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// `/oidc/logout`, only when the tenant enables RP-initiated logout discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// Supported scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// Supported `response_type` values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types_supported: Option<Vec<String>>,
    /// Supported PKCE methods (Auth0 lists `S256` and `plain`; use `S256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Supported `response_mode` values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_modes_supported: Option<Vec<String>>,
    /// Supported subject types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_types_supported: Option<Vec<String>>,
    /// ID token signing algorithms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
    /// Client authentication methods at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// Signing algorithms for `private_key_jwt` client authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// Claims the provider can supply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_supported: Option<Vec<String>>,
    /// Whether `request_uri` is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_uri_parameter_supported: Option<bool>,
    /// Whether `request` is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_parameter_supported: Option<bool>,
}

/// A JSON Web Key Set: `{"keys": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The published keys (current and, during rotation, previous).
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// The key with this `kid`, if published.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|key| key.kid.as_deref() == Some(kid))
    }
}

/// One JSON Web Key. Auth0 publishes RSA signing keys with every field below; the RSA and certificate members are
/// optional so that a set containing some other key type still parses (such keys are simply not usable here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type, `RSA` for Auth0.
    pub kty: String,
    /// Key id, matched against the JWT header's `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Intended use, `sig`.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// Algorithm, `RS256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// RSA modulus, base64url without padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url (`AQAB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Certificate chain, standard base64 DER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5c: Option<Vec<String>>,
    /// SHA-1 certificate thumbprint, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5t: Option<String>,
}

impl Jwk {
    /// An RS256 signing key without certificate members, as the dev tenant publishes it.
    pub fn rsa_signing(kid: impl Into<String>, n: impl Into<String>, e: impl Into<String>) -> Self {
        Self {
            kty: "RSA".to_owned(),
            kid: Some(kid.into()),
            key_use: Some("sig".to_owned()),
            alg: Some("RS256".to_owned()),
            n: Some(n.into()),
            e: Some(e.into()),
            x5c: None,
            x5t: None,
        }
    }

    /// Whether this is an RSA key usable to verify RS256 signatures (`kty` RSA, `n` and `e` present, `use` absent
    /// or `sig`, `alg` absent or `RS256`).
    pub fn is_rs256_signing_key(&self) -> bool {
        self.kty == "RSA"
            && self.n.is_some()
            && self.e.is_some()
            && self.key_use.as_deref().is_none_or(|u| u == "sig")
            && self.alg.as_deref().is_none_or(|a| a == "RS256")
    }
}
