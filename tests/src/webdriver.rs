//! W3C WebDriver plumbing shared by the browser and the app-window harnesses: one session, its commands and its
//! screenshots under the artifacts directory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::artifacts_dir;

/// How long a screenshot may take (they take well under a second when they work).
const SCREENSHOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// One open WebDriver session.
#[derive(Debug)]
pub(crate) struct Session {
    /// The client that talks to the driver.
    pub(crate) http: reqwest::Client,
    /// `<driver>/session/<id>`.
    pub(crate) url: String,
    /// Prefix of this session's screenshots.
    name: String,
    shots: AtomicU32,
}

impl Session {
    /// A session at `url` whose screenshots are named `<name>-<n>-<label>.png`.
    pub(crate) fn new(http: reqwest::Client, url: String, name: &str) -> Self {
        Self {
            http,
            url,
            name: name.to_owned(),
            shots: AtomicU32::new(0),
        }
    }

    /// Ends the session; errors are ignored (the driver is killed on drop anyway).
    pub(crate) async fn delete(&self) {
        let _ = self.http.delete(&self.url).send().await;
    }

    /// Sends a command and returns its `value`; a POST without a body sends `{}`, as W3C WebDriver requires.
    pub(crate) async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.url);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("WebDriver {method} {path}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("WebDriver {method} {path}: body"))?;
        if !status.is_success() {
            bail!(
                "WebDriver {method} {path} failed ({status}): {} {}",
                body["value"]["error"],
                body["value"]["message"]
            );
        }
        Ok(body["value"].clone())
    }

    /// Saves a PNG as `<artifacts>/<name>-<n>-<label>.png` after two animation frames (screenshots can lag a
    /// frame) and returns its path.
    pub(crate) async fn screenshot(&self, label: &str) -> anyhow::Result<PathBuf> {
        let _ = self
            .command(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({
                    "script": "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                    "args": [],
                })),
            )
            .await;
        let value = tokio::time::timeout(
            SCREENSHOT_TIMEOUT,
            self.command(reqwest::Method::GET, "/screenshot", None),
        )
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "WebDriver took no screenshot within {SCREENSHOT_TIMEOUT:?} (WebKitWebDriver never answers when the \
                 page is not composited: HardwareAccelerationPolicy::Never or WEBKIT_DISABLE_COMPOSITING_MODE)"
            )
        })??;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .context("screenshot is not base64")?;
        let n = self.shots.fetch_add(1, Ordering::Relaxed);
        let path = artifacts_dir()?.join(format!("{}-{n:02}-{}.png", self.name, sanitize(label)));
        std::fs::write(&path, png).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// The artifacts directory with the screenshots of an earlier run of session `name` removed (they would mislead).
pub(crate) fn fresh_artifacts(name: &str) -> anyhow::Result<PathBuf> {
    let artifacts = artifacts_dir()?;
    let prefix = format!("{name}-");
    for entry in std::fs::read_dir(&artifacts)?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(artifacts)
}

/// `label` reduced to file-name-safe characters.
pub(crate) fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
