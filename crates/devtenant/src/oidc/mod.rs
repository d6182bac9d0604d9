//! The Authentication API: discovery, JWKS, `/authorize` with the hosted login and MFA pages, `/oauth/token`,
//! `/oauth/revoke`, `/userinfo` and `/v2/logout`.

use axum::Router;

use crate::AppState;

/// Ephemeral OIDC state: login transactions, authorization codes and browser sessions.
#[derive(Debug, Default)]
pub struct OidcState {}

/// The Authentication API routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
