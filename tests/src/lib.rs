//! Harness of the end-to-end suite: starts the dev tenant and drives a real browser against it.
//!
//! - [`browser`]: chromedriver in its own process group, headless Chromium in a fresh profile, W3C WebDriver
//!   over HTTP, virtual WebAuthn authenticators, screenshots under `target/e2e-artifacts/`.
//! - [`tenant`]: an in-process dev tenant plus the calls a test makes on it (M2M token, enrollment tickets,
//!   a user's methods).
//! - [`oauth`]: the desktop client's side of Authorization Code + PKCE: verifier, loopback callback, code
//!   exchange, ID-token claims.
//! - [`window`]: the real app window under `tauri-driver`, and the stand-in system browser it opens URLs with.
//! - [`process`]: the drivers' process groups and their temporary folders under `target/e2e-tmp/`.
//! - [`signin`]: a sign-in on the tenant's pages in the browser (login form, MFA answer, the client's loopback
//!   page), shared by the app window's, the CLI's and the WebAuthn scenarios.
//! - [`proxy`]: the proxy in-process on a clock the test can move forward.
//!
//! Browser tests run one at a time ([`serial`]): the machine has two cores and Chromium is heavy.

pub mod browser;
pub mod oauth;
pub mod process;
pub mod proxy;
pub mod signin;
pub mod tenant;
mod webdriver;
pub mod window;

use std::path::PathBuf;

/// Where screenshots and logs go: `$CARGO_TARGET_DIR/e2e-artifacts` or the workspace's `target/e2e-artifacts`,
/// created on demand.
///
/// # Errors
/// When the directory cannot be created.
pub fn artifacts_dir() -> anyhow::Result<PathBuf> {
    let dir = target_dir().join("e2e-artifacts");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The build's target directory: `$CARGO_TARGET_DIR` or the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        },
        PathBuf::from,
    )
}

/// The suite's HTTP client: a timeout on every request, redirects not followed (tests look at them).
///
/// # Panics
/// Never in practice: building a client with these options fails only without a TLS backend.
pub fn http_client() -> reqwest::Client {
    #[allow(clippy::expect_used)]
    // Only the TLS backend's initialisation can fail, and rustls is compiled in.
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client with rustls builds")
}

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Holds the suite's browser lock: browser tests call this first so only one Chromium runs at a time.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}
