//! W3C WebDriver plumbing shared by the browser and the app-window harnesses: one session, its commands and its
//! screenshots under the artifacts directory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::artifacts_dir;

/// The key under which W3C WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

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

    /// Runs `script` (a function body) with `args` in the page and returns its result.
    pub(crate) async fn execute(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// The first element matching `css`, if any; other WebDriver failures than "no such element" are errors.
    pub(crate) async fn find(&self, css: &str) -> anyhow::Result<Option<String>> {
        let response = self
            .http
            .post(format!("{}/element", self.url))
            .json(&json!({ "using": "css selector", "value": css }))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if status.is_success() {
            return body["value"][ELEMENT_KEY]
                .as_str()
                .map(|id| Some(id.to_owned()))
                .ok_or_else(|| anyhow::anyhow!("malformed element reference: {body}"));
        }
        if body["value"]["error"] == "no such element" {
            return Ok(None);
        }
        bail!("WebDriver find {css} failed ({status}): {body}")
    }

    /// Whether `element` is displayed.
    pub(crate) async fn displayed(&self, element: &str) -> anyhow::Result<bool> {
        let value = self
            .command(
                reqwest::Method::GET,
                &format!("/element/{element}/displayed"),
                None,
            )
            .await?;
        Ok(value.as_bool().unwrap_or(false))
    }

    /// Clicks `element`.
    pub(crate) async fn click(&self, element: &str) -> anyhow::Result<()> {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            None,
        )
        .await
        .map(drop)
    }

    /// Types `text` into `element`.
    pub(crate) async fn type_into(&self, element: &str, text: &str) -> anyhow::Result<()> {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await
        .map(drop)
    }

    /// Clears the input `element`.
    pub(crate) async fn clear(&self, element: &str) -> anyhow::Result<()> {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            None,
        )
        .await
        .map(drop)
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
