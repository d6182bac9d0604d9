//! Authentication of the caller's access token: the [`AuthenticatedUser`] extractor and the [`TokenVerifier`]
//! behind it.
//!
//! Checks, in order, all before any upstream call: a `Bearer` token of sane size and shape; a header with
//! `alg` exactly `RS256` and a `kid`; a signature by a key of the tenant's JWKS; `iss` equal to the tenant URL
//! plus `/`; `aud` (string or array) containing the proxy's audience; `exp` and `nbf` against the injected clock
//! with a small leeway; `sub` a valid user id. Verified tokens are remembered by the SHA-256 of the token until
//! their `exp`, so repeat calls skip the RSA check.

mod cache;
pub mod jwks;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use companion_mgmt::Clock;
use companion_protocol::claims::AudienceClaim;
use companion_protocol::ids::UserId;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use cache::VerifiedCache;
use jwks::{JwksCache, KeyLookup};

/// Longest accepted bearer token. Auth0 access tokens are 1 to 2 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was rejected. Display texts are safe to show to the caller and never repeat the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Not `Bearer <token>`.
    NotBearer,
    /// Longer than [`MAX_TOKEN_BYTES`].
    TooLong,
    /// Not three base64url segments, or a segment that does not decode.
    Malformed,
    /// `alg` is not `RS256`.
    Algorithm,
    /// No `kid` in the header.
    MissingKid,
    /// No published key has this `kid`.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// The claims are missing or of the wrong type.
    Claims,
    /// `iss` is not this tenant.
    Issuer,
    /// `aud` does not contain this API.
    Audience,
    /// `exp` has passed.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `sub` is not a valid user id.
    Subject,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotBearer => "the Authorization header is not a Bearer token",
            Self::TooLong => "the token is too long",
            Self::Malformed => "the token is not a well-formed JWT",
            Self::Algorithm => "the token is not signed with RS256",
            Self::MissingKid => "the token header has no key id",
            Self::UnknownKey => "the token is signed by an unknown key",
            Self::Signature => "the token signature is invalid",
            Self::Claims => "the token claims are malformed",
            Self::Issuer => "the token was issued by another tenant",
            Self::Audience => "the token is not meant for this API",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::Subject => "the token subject is not a valid user id",
        })
    }
}

/// A failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token is not acceptable (401).
    #[error("{0}")]
    Rejected(Rejection),
    /// No signing keys could be loaded, so no token can be checked (503).
    #[error("signing keys unavailable")]
    KeysUnavailable,
}

impl From<Rejection> for AuthError {
    fn from(rejection: Rejection) -> Self {
        Self::Rejected(rejection)
    }
}

/// The claims the proxy uses from a verified access token. Unknown claims are ignored; `azp` is optional so
/// tokens of Auth0's RFC 9068 profile (which uses `client_id`) are accepted too.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VerifiedClaims {
    /// Issuer.
    pub iss: String,
    /// The user.
    pub sub: String,
    /// Audience(s).
    pub aud: AudienceClaim,
    /// Expiry, epoch seconds.
    pub exp: i64,
    /// Not before, epoch seconds.
    #[serde(default)]
    pub nbf: Option<i64>,
    /// Issued at, epoch seconds.
    #[serde(default)]
    pub iat: Option<i64>,
    /// The client the token was issued to (Auth0 profile).
    #[serde(default)]
    pub azp: Option<String>,
    /// The client the token was issued to (RFC 9068 profile).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Epoch seconds of the latest authentication in this session.
    #[serde(default, rename = "https://passkey-companion/auth_time")]
    pub auth_time: Option<i64>,
    /// Epoch seconds of the latest MFA in this session.
    #[serde(default, rename = "https://passkey-companion/mfa_time")]
    pub mfa_time: Option<i64>,
}

/// A verified caller: the user id from `sub` and the token's claims.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser {
    /// The caller; every upstream call is made for this user only.
    pub user_id: UserId,
    /// The verified claims.
    pub claims: Arc<VerifiedClaims>,
}

/// Counters of the verifier, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifierStats {
    /// Tokens served from the verified-token cache.
    pub cache_hits: u64,
    /// Full verifications (RSA) performed.
    pub verifications: u64,
    /// JWKS fetch attempts.
    pub jwks_fetches: u64,
    /// Failed JWKS fetch attempts.
    pub jwks_failures: u64,
}

/// Verifies access tokens for one tenant and audience.
pub struct TokenVerifier {
    issuer: String,
    audience: String,
    leeway: i64,
    clock: Arc<dyn Clock>,
    jwks: JwksCache,
    verified: VerifiedCache,
    verifications: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct JwtHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

fn is_base64url(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl TokenVerifier {
    /// A verifier expecting `issuer` and `audience`, with `leeway` on `exp`/`nbf`, keys from `jwks`, and a cache of
    /// at most `cache_size` verified tokens.
    pub fn new(
        issuer: String,
        audience: String,
        leeway: Duration,
        clock: Arc<dyn Clock>,
        jwks: JwksCache,
        cache_size: usize,
    ) -> Self {
        Self {
            issuer,
            audience,
            leeway: i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX),
            clock,
            jwks,
            verified: VerifiedCache::new(cache_size),
            verifications: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The key set.
    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    /// Counters.
    pub fn stats(&self) -> VerifierStats {
        VerifierStats {
            cache_hits: self.verified.hits(),
            verifications: self
                .verifications
                .load(std::sync::atomic::Ordering::Relaxed),
            jwks_fetches: self.jwks.fetches(),
            jwks_failures: self.jwks.failures(),
        }
    }

    /// Verifies `token` and returns the caller.
    ///
    /// # Errors
    /// [`AuthError::Rejected`] for a token that is not acceptable, [`AuthError::KeysUnavailable`] when no key set
    /// could be loaded at all.
    pub async fn verify(&self, token: &str) -> Result<AuthenticatedUser, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::TooLong.into());
        }
        let now = self.clock.now_utc().unix_timestamp();
        // A token in the cache passed every check below when it was verified (the digest names exactly that token),
        // so a repeat caller pays for the digest only, not for scanning the token's shape again.
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.verified.get(&digest, now - self.leeway) {
            return self.user(claims);
        }
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(Rejection::Malformed.into());
        };
        if !(is_base64url(header) && is_base64url(payload) && is_base64url(signature)) {
            return Err(Rejection::Malformed.into());
        }
        let header: JwtHeader = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(Rejection::Malformed)?;
        if header.alg != "RS256" {
            return Err(Rejection::Algorithm.into());
        }
        let kid = header.kid.ok_or(Rejection::MissingKid)?;
        let key = self.jwks.key(&kid).await.map_err(|lookup| match lookup {
            KeyLookup::UnknownKid => AuthError::Rejected(Rejection::UnknownKey),
            KeyLookup::Unavailable => AuthError::KeysUnavailable,
        })?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        self.verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let claims = jsonwebtoken::decode::<VerifiedClaims>(token, &key, &validation)
            .map_err(|error| {
                use jsonwebtoken::errors::ErrorKind;
                match error.kind() {
                    ErrorKind::InvalidSignature => Rejection::Signature,
                    ErrorKind::InvalidAlgorithm => Rejection::Algorithm,
                    ErrorKind::Json(_) | ErrorKind::MissingRequiredClaim(_) => Rejection::Claims,
                    _ => Rejection::Malformed,
                }
            })?
            .claims;
        if claims.iss != self.issuer {
            return Err(Rejection::Issuer.into());
        }
        if !claims.aud.contains(&self.audience) {
            return Err(Rejection::Audience.into());
        }
        if claims.exp.saturating_add(self.leeway) <= now {
            return Err(Rejection::Expired.into());
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.leeway))
        {
            return Err(Rejection::NotYetValid.into());
        }
        let claims = Arc::new(claims);
        let user = self.user(claims.clone())?;
        self.verified.insert(digest, claims, now - self.leeway);
        Ok(user)
    }

    fn user(&self, claims: Arc<VerifiedClaims>) -> Result<AuthenticatedUser, AuthError> {
        let user_id = UserId::parse(&claims.sub).map_err(|_| Rejection::Subject)?;
        Ok(AuthenticatedUser { user_id, claims })
    }
}

/// Extracts the token from `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1).
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Err(ApiError::MissingToken);
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::Rejected(Rejection::NotBearer))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(AuthError::Rejected(Rejection::NotBearer))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Rejected(Rejection::NotBearer).into());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Rejected(Rejection::NotBearer).into());
    }
    Ok(token)
}

impl FromRequestParts<AppState> for AuthenticatedUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        match state.verifier.verify(token).await {
            Ok(user) => {
                tracing::Span::current().record("sub", user.user_id.as_str());
                Ok(user)
            }
            Err(error) => {
                tracing::info!(reason = %error, "access token refused");
                Err(error.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use companion_protocol::claims::{AUTH_TIME_CLAIM, MFA_TIME_CLAIM};

    #[test]
    fn bearer_parsing_is_strict() {
        let parts = |value: Option<&str>| {
            let mut builder = axum::http::Request::builder();
            if let Some(value) = value {
                builder = builder.header(AUTHORIZATION, value);
            }
            builder.body(()).unwrap().into_parts().0
        };
        assert!(matches!(bearer(&parts(None)), Err(ApiError::MissingToken)));
        assert_eq!(bearer(&parts(Some("Bearer abc"))).unwrap(), "abc");
        assert_eq!(bearer(&parts(Some("bearer abc"))).unwrap(), "abc");
        for bad in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "Token abc"] {
            assert!(
                matches!(bearer(&parts(Some(bad))), Err(ApiError::InvalidToken(_))),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn namespaced_claims_use_the_shared_names() {
        let json = serde_json::json!({
            "iss": "https://t/", "sub": "auth0|a", "aud": ["x", "y"], "exp": 10,
            AUTH_TIME_CLAIM: 5, MFA_TIME_CLAIM: 6, "unknown": true
        });
        let claims: VerifiedClaims = serde_json::from_value(json).unwrap();
        assert_eq!(
            claims.auth_time,
            Some(5),
            "auth_time under the shared claim name"
        );
        assert_eq!(
            claims.mfa_time,
            Some(6),
            "mfa_time under the shared claim name"
        );
        assert!(claims.aud.contains("y"));
    }

    #[test]
    fn segments_must_be_base64url() {
        assert!(is_base64url("eyJhbGciOiJSUzI1NiJ9"));
        assert!(!is_base64url(""));
        assert!(!is_base64url("abc="));
        assert!(!is_base64url("a+b/c"));
        assert!(!is_base64url("ü"));
    }
}
