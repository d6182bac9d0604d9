//! Desktop-side library of Passkey Companion: configuration layers, loopback sign-in, token storage and the proxy
//! client shared by the desktop app and the `passkeys` command line.

pub mod config;
pub mod store;
