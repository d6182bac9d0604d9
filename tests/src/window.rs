//! The real app window: `passkey-companion` (debug build) under `tauri-driver` + `WebKitWebDriver`, spoken to in
//! plain W3C WebDriver over HTTP, and a "system browser" stand-in that records every URL the app opens.
//!
//! `tauri-driver` runs in its own process group ([`GroupChild`]) and the whole group (driver, WebKitWebDriver, the
//! app and its WebKit processes) is killed on drop, so a failed test never leaves them holding cargo's output
//! open; their `TMPDIR` is a scratch directory under `target/e2e-tmp/`, removed with the group.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

use crate::browser::free_port;
use crate::process::GroupChild;
use crate::webdriver::{Session, fresh_artifacts, sanitize};

/// The workspace root (the e2e crate lives in `tests/`).
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the app (debug) with the cargo that runs the tests and returns the binary's path.
///
/// # Errors
/// When cargo fails.
pub fn build_app() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "passkey-companion"])
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .status()
        .context("running cargo build -p passkey-companion")?;
    if !status.success() {
        bail!("cargo build -p passkey-companion failed: {status}");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let binary = target.join("debug").join("passkey-companion");
    if !binary.is_file() {
        bail!("the app binary is missing at {}", binary.display());
    }
    Ok(binary)
}

/// `tauri-driver`: `$TAURI_DRIVER`, else on `PATH`, else in `~/.cargo/bin`.
fn tauri_driver_path() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("TAURI_DRIVER") {
        return Ok(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("tauri-driver"))
        .find(|path| path.is_file());
    let in_cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .map(|home| home.join("bin").join("tauri-driver"))
        .filter(|path| path.is_file());
    on_path.or(in_cargo_home).ok_or_else(|| {
        anyhow!("tauri-driver not found (`cargo install tauri-driver --locked`; `cargo xtask test` installs it)")
    })
}

/// A running `tauri-driver`, killed with its process group (WebKitWebDriver, the app and its WebKit processes) on
/// drop.
#[derive(Debug)]
pub struct TauriDriver {
    /// Held for its `Drop`: the group dies with the driver.
    _group: GroupChild,
    url: String,
}

impl TauriDriver {
    /// Starts `tauri-driver` on free loopback ports with `env` added to its environment (WebKitWebDriver and the
    /// app inherit it), logging to `log`, and waits until it answers.
    ///
    /// # Errors
    /// When there is no display, no driver, or it does not become ready.
    pub async fn start(env: &[(String, String)], log: &Path) -> anyhow::Result<Self> {
        if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
            bail!("no display: run the end-to-end suite under xvfb-run (`cargo xtask test` does)");
        }
        let driver = tauri_driver_path()?;
        let port = free_port()?;
        let native_port = free_port()?;
        let mut command = Command::new(&driver);
        command
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native_port.to_string(),
            ])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut child = GroupChild::spawn("tauri-driver", command, log)?;
        let url = format!("http://127.0.0.1:{port}");
        let http = crate::http_client();
        let status = format!("{url}/status");
        child
            .wait_until("tauri-driver", Duration::from_secs(20), || async {
                http.get(&status)
                    .send()
                    .await
                    .is_ok_and(|response| response.status().is_success())
            })
            .await?;
        Ok(Self { _group: child, url })
    }
}

/// The app's window in a WebDriver session.
#[derive(Debug)]
pub struct AppWindow {
    session: Session,
    /// How long the app took from the session request to its first painted view.
    pub started_in: Duration,
    driver: TauriDriver,
}

impl AppWindow {
    /// Starts `tauri-driver` with `env`, opens a session on `application`, and waits for the UI to leave its
    /// loading view. Screenshots are named `<name>-<n>-<label>.png`.
    ///
    /// # Errors
    /// When the driver or the app cannot start.
    pub async fn launch(
        name: &str,
        application: &Path,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let artifacts = fresh_artifacts(name)?;
        let driver =
            TauriDriver::start(env, &artifacts.join(format!("{name}-tauri-driver.log"))).await?;
        let http = crate::http_client();
        let started = Instant::now();
        let response: Value = http
            .post(format!("{}/session", driver.url))
            .json(&json!({
                "capabilities": {
                    "alwaysMatch": {
                        "tauri:options": { "application": application.display().to_string() }
                    }
                }
            }))
            .send()
            .await
            .context("WebDriver new session")?
            .json()
            .await?;
        let session = response["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no WebDriver session on the app: {response}"))?;
        let mut window = Self {
            session: Session::new(http, format!("{}/session/{session}", driver.url), name),
            started_in: Duration::ZERO,
            driver,
        };
        window
            .wait_for(
                "body:not([data-view=loading])[data-view]",
                Duration::from_secs(30),
            )
            .await?;
        window.started_in = started.elapsed();
        Ok(window)
    }

    /// Ends the session (the app quits) and stops the driver.
    pub async fn close(self) {
        self.session.delete().await;
        drop(self);
    }

    /// Runs `script` in the window and returns its value.
    ///
    /// # Errors
    /// When WebDriver refuses or the script throws.
    pub async fn execute(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.session.execute(script, args).await
    }

    /// The visible text of the page.
    ///
    /// # Errors
    /// When WebDriver refuses.
    pub async fn text(&self) -> anyhow::Result<String> {
        let value = self
            .execute("return document.body.innerText;", json!([]))
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The first element matching `css`, if any.
    ///
    /// # Errors
    /// When WebDriver fails otherwise.
    pub async fn find(&self, css: &str) -> anyhow::Result<Option<String>> {
        self.session.find(css).await
    }

    /// Waits until an element matching `css` is displayed and returns it; on timeout, screenshots and fails
    /// with the page text.
    ///
    /// # Errors
    /// On timeout or WebDriver failure.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(element) = self.find(css).await?
                && self.displayed(&element).await.unwrap_or(false)
            {
                return Ok(element);
            }
            if Instant::now() > deadline {
                let shot = self
                    .screenshot(&format!("timeout-{}", sanitize(css)))
                    .await
                    .ok();
                let text = self.text().await.unwrap_or_default();
                bail!(
                    "`{css}` did not appear in the app within {timeout:?} (screenshot {shot:?}); text:\n{text}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no displayed element matches `css`.
    ///
    /// # Errors
    /// On timeout or WebDriver failure.
    pub async fn wait_gone(&self, css: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let visible = match self.find(css).await? {
                Some(element) => self.displayed(&element).await.unwrap_or(false),
                None => false,
            };
            if !visible {
                return Ok(());
            }
            if Instant::now() > deadline {
                let shot = self
                    .screenshot(&format!("still-{}", sanitize(css)))
                    .await
                    .ok();
                bail!("`{css}` is still shown after {timeout:?} (screenshot {shot:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn displayed(&self, element: &str) -> anyhow::Result<bool> {
        self.session.displayed(element).await
    }

    /// Clicks an element.
    ///
    /// # Errors
    /// When WebDriver refuses.
    pub async fn click(&self, element: &str) -> anyhow::Result<()> {
        self.session.click(element).await
    }

    /// Waits for `css` and clicks it.
    ///
    /// # Errors
    /// As [`AppWindow::wait_for`] and [`AppWindow::click`].
    pub async fn click_on(&self, css: &str, timeout: Duration) -> anyhow::Result<()> {
        let element = self.wait_for(css, timeout).await?;
        self.click(&element).await
    }

    /// Clears an input and types `text` into it.
    ///
    /// # Errors
    /// When WebDriver refuses.
    pub async fn replace_text(&self, element: &str, text: &str) -> anyhow::Result<()> {
        self.session.clear(element).await?;
        self.session.type_into(element, text).await
    }

    /// Saves a PNG of the window as `<artifacts>/<name>-<n>-<label>.png` after two animation frames.
    ///
    /// # Errors
    /// When WebDriver refuses or the file cannot be written.
    pub async fn screenshot(&self, label: &str) -> anyhow::Result<PathBuf> {
        self.session.screenshot(label).await
    }

    /// The driver's base URL (for diagnostics).
    pub fn driver_url(&self) -> &str {
        &self.driver.url
    }
}

/// The app's "system browser": a script the app runs with each URL (`COMPANION_BROWSER`), which appends the URL
/// to a file the test reads.
#[derive(Debug)]
pub struct UrlInbox {
    dir: tempfile::TempDir,
    taken: usize,
}

impl UrlInbox {
    /// Creates the script and its inbox file.
    ///
    /// # Errors
    /// When the files cannot be written.
    pub fn new() -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::Builder::new().prefix("e2e-browser-").tempdir()?;
        let inbox = dir.path().join("urls");
        std::fs::write(&inbox, "")?;
        let script = dir.path().join("open-url");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# Stand-in system browser of the window test: hands the URL to the test.\nprintf '%s\\n' \"$1\" >> '{}'\n",
                inbox.display()
            ),
        )?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
        Ok(Self { dir, taken: 0 })
    }

    /// The command for `COMPANION_BROWSER`.
    pub fn command(&self) -> String {
        self.dir.path().join("open-url").display().to_string()
    }

    /// Waits for the next URL the app opens.
    ///
    /// # Errors
    /// When none arrives within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(self.dir.path().join("urls"))?;
            if let Some(url) = text.lines().nth(self.taken) {
                self.taken += 1;
                return Ok(url.to_owned());
            }
            if Instant::now() > deadline {
                bail!("the app opened no URL within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
