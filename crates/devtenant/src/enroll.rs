//! Enrollment-ticket pages: `ticket_url` opens a page that registers a WebAuthn credential and stores it as a
//! `webauthn-platform` or `webauthn-roaming` method.

use axum::Router;

use crate::AppState;

/// The enrollment page routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
