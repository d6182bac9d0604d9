//! The development control surface under `/__dev/` (off unless `--dev-controls`): inject latency, 429 or 5xx on
//! chosen routes, rotate signing keys, move nothing else, and read the log of Management calls.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// Injected faults and the Management call log.
#[derive(Debug, Default)]
pub struct Faults {}

/// The `/__dev/` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}

/// Middleware applying injected faults to matching requests.
pub async fn inject(State(_state): State<AppState>, request: Request, next: Next) -> Response {
    next.run(request).await
}
