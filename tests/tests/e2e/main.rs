//! End-to-end suite: the dev tenant's pages in headless Chromium with WebAuthn virtual authenticators.
//!
//! Browser tests take [`companion_e2e::serial`] first, so one Chromium runs at a time. Screenshots of every page
//! state land in `target/e2e-artifacts/`. A missing Chromium or chromedriver fails the tests: nothing is skipped.

mod cli;
mod webauthn;
mod window;
