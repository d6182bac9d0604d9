//! Headless Chromium through chromedriver, spoken to in plain W3C WebDriver over HTTP, with the WebDriver
//! WebAuthn extension for virtual authenticators.
//!
//! chromedriver runs in its own process group ([`GroupChild`]) and the whole group (driver and browser) is killed on
//! drop, so a failed test never leaves a browser holding cargo's output open. (Chromium's crash handler starts in a
//! session of its own, outside the group, but exits as soon as the browser is gone.) Chromium's profile and
//! temporary files live in the driver's scratch directory under `target/e2e-tmp/`, removed with it.
//! chromedriver's output goes to a log file under the artifacts directory, never to the test's stdout.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use serde_json::{Value, json};

use crate::process::GroupChild;
use crate::webdriver::{Session, fresh_artifacts, sanitize};

/// Flags for headless Chromium on a CI machine (see toolchain.md).
const CHROMIUM_FLAGS: [&str; 11] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1000,900",
    "--lang=en-US",
];

/// The chromedriver binary: `$CHROMEDRIVER` or `/usr/bin/chromedriver`.
pub fn chromedriver_path() -> PathBuf {
    std::env::var_os("CHROMEDRIVER")
        .map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from)
}

/// The browser binary: `$CHROMIUM` or `/usr/bin/chromium`.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// A running chromedriver, killed with its process group on drop; Chromium's temporary files
/// (`org.chromium.Chromium.*`) and its profile live in the driver's scratch directory and go with it.
#[derive(Debug)]
pub struct ChromeDriver {
    child: GroupChild,
    /// Base URL of its WebDriver endpoint, e.g. `http://127.0.0.1:9515`.
    pub url: String,
}

impl ChromeDriver {
    /// Starts chromedriver on a free loopback port and waits until it reports ready.
    ///
    /// # Errors
    /// When chromedriver or Chromium is missing (a loud failure, never a skip), or it does not become ready.
    pub async fn start(log: &Path) -> anyhow::Result<Self> {
        let driver = chromedriver_path();
        let browser = chromium_path();
        for (what, path, package) in [
            ("chromedriver", &driver, "chromium-driver"),
            ("Chromium", &browser, "chromium"),
        ] {
            if !path.exists() {
                bail!(
                    "{what} not found at {} (set ${} or install the Debian package `{package}`; `cargo xtask test` installs it)",
                    path.display(),
                    if what == "Chromium" {
                        "CHROMIUM"
                    } else {
                        "CHROMEDRIVER"
                    }
                );
            }
        }
        let port = free_port()?;
        let mut command = Command::new(&driver);
        command
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()));
        // chromedriver logs to --log-path; its own stdout only says it started.
        let mut child = GroupChild::spawn("chromedriver", command, &log.with_extension("stdout"))?;
        let url = format!("http://127.0.0.1:{port}");
        let http = crate::http_client();
        let status = format!("{url}/status");
        child
            .wait_until("chromedriver", Duration::from_secs(20), || async {
                match http.get(&status).send().await {
                    Ok(response) => response
                        .json::<Value>()
                        .await
                        .is_ok_and(|body| body["value"]["ready"] == true),
                    Err(_) => false,
                }
            })
            .await?;
        Ok(Self { child, url })
    }

    /// The directory Chromium gets as `TMPDIR`, removed with the driver.
    pub fn tmp_dir(&self) -> &Path {
        self.child.tmp_dir()
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released for the child to take).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// What a virtual authenticator emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtualAuthenticator {
    /// A USB security key that only checks presence (no PIN, no biometrics).
    PresenceOnlyUsbKey,
    /// A built-in platform authenticator with user verification (Touch ID / Windows Hello).
    Platform,
}

/// A credential held by a virtual authenticator.
#[derive(Debug, Clone)]
pub struct VirtualCredential {
    /// The credential id, base64url without padding.
    pub credential_id: String,
    /// The RP ID it is bound to.
    pub rp_id: String,
    /// Its signature counter.
    pub sign_count: u64,
}

/// One WebDriver session in a fresh headless Chromium profile.
#[derive(Debug)]
pub struct Browser {
    session: Session,
    // Chromium's profile lives in the driver's scratch directory, removed once the group is dead.
    driver: ChromeDriver,
}

impl Browser {
    /// Starts chromedriver and opens a session; `name` prefixes this session's screenshots.
    ///
    /// # Errors
    /// When chromedriver or Chromium is missing or the session cannot be created.
    pub async fn start(name: &str) -> anyhow::Result<Self> {
        let artifacts = fresh_artifacts(name)?;
        let driver =
            ChromeDriver::start(&artifacts.join(format!("{name}-chromedriver.log"))).await?;
        let profile = driver.tmp_dir().join("profile");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "webauthn:virtualAuthenticators": true,
                    "goog:chromeOptions": {
                        "binary": chromium_path().display().to_string(),
                        "args": args,
                    },
                    "timeouts": { "pageLoad": 30_000, "script": 30_000 },
                }
            }
        });
        let http = crate::http_client();
        let response: Value = http
            .post(format!("{}/session", driver.url))
            .json(&capabilities)
            .send()
            .await?
            .json()
            .await?;
        let session = response["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no WebDriver session: {response}"))?;
        Ok(Self {
            session: Session::new(http, format!("{}/session/{session}", driver.url), name),
            driver,
        })
    }

    /// Ends the session cleanly (dropping the browser kills it anyway).
    pub async fn close(self) {
        self.session.delete().await;
        drop(self);
    }

    /// Navigates to `url` and waits for the load.
    ///
    /// # Errors
    /// When WebDriver refuses.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.session
            .command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    /// The current URL.
    ///
    /// # Errors
    /// When WebDriver refuses.
    pub async fn current_url(&self) -> anyhow::Result<String> {
        let value = self
            .session
            .command(reqwest::Method::GET, "/url", None)
            .await?;
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no URL"))
    }

    /// The visible text of the page's body.
    ///
    /// # Errors
    /// When WebDriver refuses.
    pub async fn body_text(&self) -> anyhow::Result<String> {
        let value = self
            .execute(
                "return document.body ? document.body.innerText : '';",
                json!([]),
            )
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// Runs `script` (a function body) with `args` in the page and returns its result.
    ///
    /// # Errors
    /// When the script throws or WebDriver refuses.
    pub async fn execute(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.session.execute(script, args).await
    }

    /// The first element matching `css`, if any.
    ///
    /// # Errors
    /// When WebDriver fails for another reason than "no such element".
    pub async fn find(&self, css: &str) -> anyhow::Result<Option<String>> {
        self.session.find(css).await
    }

    /// Waits up to `timeout` for an element matching `css`; on timeout saves a screenshot and the page source
    /// and fails with the page's URL and text.
    ///
    /// # Errors
    /// On timeout or WebDriver failure.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(element) = self.find(css).await? {
                return Ok(element);
            }
            if Instant::now() > deadline {
                let shot = self
                    .screenshot(&format!("timeout-{}", sanitize(css)))
                    .await
                    .ok();
                let url = self.current_url().await.unwrap_or_default();
                let text = self.body_text().await.unwrap_or_default();
                bail!(
                    "`{css}` did not appear within {timeout:?} on {url} (screenshot {shot:?}); page text:\n{text}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks `element`.
    ///
    /// # Errors
    /// When WebDriver refuses.
    pub async fn click(&self, element: &str) -> anyhow::Result<()> {
        self.session.click(element).await
    }

    /// Types `text` into `element`.
    ///
    /// # Errors
    /// When WebDriver refuses.
    pub async fn type_into(&self, element: &str, text: &str) -> anyhow::Result<()> {
        self.session.type_into(element, text).await
    }

    /// Saves a PNG of the viewport as `<artifacts>/<session name>-<n>-<label>.png` and returns its path.
    ///
    /// # Errors
    /// When WebDriver refuses or the file cannot be written.
    pub async fn screenshot(&self, label: &str) -> anyhow::Result<PathBuf> {
        self.session.screenshot(label).await
    }

    /// Adds a virtual authenticator to this session and returns its id.
    ///
    /// # Errors
    /// When WebDriver refuses.
    pub async fn add_authenticator(&self, kind: VirtualAuthenticator) -> anyhow::Result<String> {
        let options = match kind {
            VirtualAuthenticator::PresenceOnlyUsbKey => json!({
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": true,
                "hasUserVerification": false,
                "isUserConsenting": true,
                "isUserVerified": false,
            }),
            VirtualAuthenticator::Platform => json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true,
            }),
        };
        let value = self
            .session
            .command(
                reqwest::Method::POST,
                "/webauthn/authenticator",
                Some(options),
            )
            .await?;
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no authenticator id: {value}"))
    }

    /// Removes a virtual authenticator (unplugs the key).
    ///
    /// # Errors
    /// When WebDriver refuses.
    pub async fn remove_authenticator(&self, authenticator: &str) -> anyhow::Result<()> {
        self.session
            .command(
                reqwest::Method::DELETE,
                &format!("/webauthn/authenticator/{authenticator}"),
                None,
            )
            .await
            .map(drop)
    }

    /// The credentials a virtual authenticator holds.
    ///
    /// # Errors
    /// When WebDriver refuses.
    pub async fn credentials(&self, authenticator: &str) -> anyhow::Result<Vec<VirtualCredential>> {
        let value = self
            .session
            .command(
                reqwest::Method::GET,
                &format!("/webauthn/authenticator/{authenticator}/credentials"),
                None,
            )
            .await?;
        let list = value
            .as_array()
            .ok_or_else(|| anyhow!("not a list: {value}"))?;
        Ok(list
            .iter()
            .map(|c| VirtualCredential {
                // chromedriver writes base64url; normalise away any padding.
                credential_id: c["credentialId"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_end_matches('=')
                    .to_owned(),
                rp_id: c["rpId"].as_str().unwrap_or_default().to_owned(),
                sign_count: c["signCount"].as_u64().unwrap_or_default(),
            })
            .collect())
    }

    /// The chromedriver endpoint (for diagnostics).
    pub fn driver_url(&self) -> &str {
        &self.driver.url
    }
}
