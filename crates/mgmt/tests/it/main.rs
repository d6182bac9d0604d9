//! Integration tests of `companion-mgmt`: against the dev tenant started in process on port 0, plus small
//! test doubles where paused time or exact replay of recorded Auth0 bodies is needed.

// Helpers outside `#[test]` functions are test code too: a failed setup step should panic with its cause.
#![allow(clippy::unwrap_used)]

mod doubles;
mod faults;
mod harness;
mod methods;
mod proxy_env;
mod retries;
mod shapes;
mod tls;
mod tokens;
