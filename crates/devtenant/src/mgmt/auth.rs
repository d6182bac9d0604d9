//! Bearer authentication of Management API calls: an RS256 access token from this tenant for the audience
//! `<base>/api/v2/`, verified on the tenant clock, and scope checks with Auth0's 401 and 403 bodies.
//!
//! The 401 messages are `Missing authentication` (no `Authorization` header), `Bad HTTP authentication header
//! format` (not `Bearer <token>`), `Expired token` and `Invalid token` (anything else, including a token for
//! another audience such as the proxy API's). Auth0's exact wording for the last two varies by cause and is
//! **[unverified]** here.

use std::collections::BTreeSet;

use axum::http::{HeaderMap, header};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::AppState;
use crate::error::MgmtError;
use crate::keys::KeyError;

/// Who called the Management API, from a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`, e.g. `companion-proxy@clients`.
    pub sub: String,
    /// The client: `azp`, else `sub` without `@clients`.
    pub client_id: Option<String>,
    /// The granted scopes.
    pub scopes: BTreeSet<String>,
}

impl Caller {
    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// Checks that the token carries any of `any_of`.
    ///
    /// # Errors
    /// Auth0's 403 `insufficient_scope` naming `any_of`.
    pub fn require(&self, any_of: &[&str]) -> Result<(), MgmtError> {
        if any_of.iter().any(|scope| self.has_scope(scope)) {
            Ok(())
        } else {
            Err(MgmtError::insufficient_scope(any_of))
        }
    }
}

#[derive(Debug, Deserialize)]
struct MgmtClaims {
    sub: String,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// Auth0's message for a request without an `Authorization` header.
pub const MISSING_AUTHENTICATION: &str = "Missing authentication";
/// Auth0's message for an `Authorization` header that is not `Bearer <token>`.
pub const BAD_HEADER_FORMAT: &str = "Bad HTTP authentication header format";
/// The message for an expired token.
pub const EXPIRED_TOKEN: &str = "Expired token";
/// The message for any other unusable token.
pub const INVALID_TOKEN: &str = "Invalid token";

/// Authenticates the bearer token of a Management API request.
///
/// # Errors
/// Auth0's 401 bodies (see the module documentation).
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, MgmtError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(MgmtError::unauthorized(MISSING_AUTHENTICATION));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty() && !t.contains(' '))
        .ok_or_else(|| MgmtError::unauthorized(BAD_HEADER_FORMAT))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    validation.set_issuer(&[state.issuer()]);
    validation.set_audience(&[state.mgmt_audience()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims: MgmtClaims = state
        .keys
        .verify(token, &validation, state.clock.unix())
        .map_err(|error| match error {
            KeyError::Jwt(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                MgmtError::unauthorized(EXPIRED_TOKEN)
            }
            _ => MgmtError::unauthorized(INVALID_TOKEN),
        })?;
    let client_id = claims
        .azp
        .clone()
        .or_else(|| claims.sub.strip_suffix("@clients").map(str::to_owned));
    Ok(Caller {
        client_id,
        scopes: claims
            .scope
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        sub: claims.sub,
    })
}
