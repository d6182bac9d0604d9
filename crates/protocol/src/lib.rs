//! Wire types shared by every part of Passkey Companion: the proxy's API, Auth0's shapes, error bodies and claim names.
//!
//! This crate does no I/O: it only describes what travels on the wire. Auth0's shapes live in [`auth0`], the
//! proxy's own API in [`api`], validated identifiers in [`ids`], and the names of claims and protocol constants
//! (plus the proxy access token's claims) in [`claims`].
//! Every Auth0 type tolerates unknown fields, and every open enumeration keeps unknown values instead of failing.
//!
//! With the `fixtures` feature (for dev-dependencies only), the `fixtures` module exposes the golden Auth0 fixtures this
//! crate's tests pin, so other crates (the dev tenant) can compare their responses with the same shapes.

mod open_enum;

pub mod api;
pub mod auth0;
pub mod claims;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod ids;
