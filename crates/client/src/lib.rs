//! Desktop-side library of Passkey Companion: configuration layers, loopback sign-in, token storage and the proxy
//! client shared by the desktop app and the `passkeys` command line.
//!
//! - [`config`]: layered configuration (defaults < user file < managed < environment), managed keys locked.
//! - [`store`]: where the refresh token lives (OS keyring, or memory).
//! - [`oidc`] and [`loopback`]: Authorization Code + PKCE sign-in through a loopback redirect, refresh, revoke.
//! - [`browser`]: opening URLs (configured command, else the system default).
//! - [`session`]: the signed-in session tying these together (rotation-safe refresh, sign-out).
//! - [`proxy`]: typed calls to the backend proxy; [`Companion`] ties session and proxy together (retry after a
//!   refused token, enrollment with polling).
//! - [`http`]: the one outbound HTTP client. [`clock`]: injected time.

pub mod browser;
pub mod clock;
mod companion;
pub mod config;
pub mod http;
pub mod loopback;
pub mod oidc;
pub mod proxy;
pub mod session;
pub mod store;

pub use companion::{Companion, EnrollError, EnrollOptions};
