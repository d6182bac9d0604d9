//! Typed client for the parts of the Auth0 Management API that Passkey Companion uses, with a cached
//! machine-to-machine token and rate-limit-aware retries.
//!
//! Used by the proxy and the admin tool only: the desktop side never holds a client secret (design.md §2).
//!
//! - [`MgmtClient`]: list (every page), get, rename and delete a user's authentication methods, and create
//!   enrollment tickets. One `reqwest` client: rustls with native roots plus an optional extra CA, no redirects,
//!   connect and request timeouts, proxies from the environment; [`http_client`] builds that client for sharing
//!   ([`MgmtClient::with_http`]).
//! - [`TokenCache`]: the client-credentials token, reused until a slack before expiry and refreshed by a single
//!   flight; failures are [`FailureKind::Transient`] or [`FailureKind::Permanent`].
//! - [`RetryPolicy`]: 429 waits from `Retry-After` / `x-ratelimit-reset` within a budget, then
//!   [`MgmtError::Busy`]; backoff with jitter for idempotent calls.
//! - [`Clock`]: wall-clock time, injected.

mod client;
pub mod clock;
pub mod config;
mod error;
mod metrics;
mod path;
pub mod retry;
mod token;

pub use client::{MgmtClient, http_client};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::MgmtConfig;
pub use error::{
    ConfigError, FailureKind, MgmtError, Operation, OtherOperation, TokenFailureReason,
    TokenRequestError,
};
pub use metrics::MetricsSnapshot;
pub use reqwest::Method;
pub use retry::RetryPolicy;
pub use token::{AccessToken, TokenCache};
