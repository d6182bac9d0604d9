//! Wire types shared by every part of Passkey Companion: the proxy's API, Auth0's shapes, error bodies and claim names.
//!
//! This crate does no I/O: it only describes what travels on the wire. Auth0's shapes live in [`auth0`], the
//! proxy's own API in [`api`], and the names of claims and protocol constants in [`claims`].
//! Every Auth0 type tolerates unknown fields, and every open enumeration keeps unknown values instead of failing.

pub mod auth0;
pub mod claims;
