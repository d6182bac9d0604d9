//! Tenant provisioning for IT: plans and applies the APIs, clients, grants, factors and the post-login Action
//! that Passkey Companion needs, and exports the proxy and desktop configurations.
//!
//! - [`spec::TenantSpec`]: the reviewed `tenant.toml`.
//! - [`plan`]: reads the tenant and lists what [`apply`] would change (empty when the tenant matches).
//! - [`apply`]: makes exactly those changes, idempotently; creates or updates the Action, waits for its build,
//!   deploys it and binds it after the existing post-login bindings; keeps the managed clients' grants to exactly
//!   the spec (wider grants are reported as drift and narrowed).
//! - [`export()`]: the proxy configuration (design.md §3) and the desktop managed configuration (design.md §5).
//!
//! All calls go through [`companion_mgmt::MgmtClient`] (token cache, rate-limit-aware retries) with the admin's own
//! M2M client. Every failure names its step and carries Auth0's error ([`AdminError`]).

mod engine;
pub mod error;
pub mod export;
pub mod spec;

pub use engine::{ACTION_CODE, ApplyOptions, Change, ChangeKind, Outcome, apply, plan};
pub use error::AdminError;
pub use export::{Exported, export};
pub use spec::TenantSpec;
