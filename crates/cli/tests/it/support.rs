//! Runs the real `passkeys` binary against an in-process dev tenant and proxy, with a "browser" command that
//! records each URL in a file; the test then plays the browser with an HTTP client.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use companion_devtenant::world::demo;
use companion_devtenant::{RunningTenant, TenantOptions};
use companion_proxy::AppState;
use companion_proxy::config::Settings;

/// The tenant, the proxy, and a scratch directory for the CLI's environment.
pub(crate) struct World {
    pub(crate) tenant: RunningTenant,
    pub(crate) proxy_url: String,
    pub(crate) port: u16,
    pub(crate) dir: tempfile::TempDir,
    /// The loopback's whole page of the last [`Step::SignInForgedCode`].
    last_page: std::sync::Mutex<Option<String>>,
}

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe a port");
    probe.local_addr().expect("address").port()
}

impl World {
    /// Starts a tenant (accepting a free loopback port as callback) and a proxy.
    pub(crate) async fn start() -> Self {
        let port = free_port();
        let mut options = TenantOptions::for_test();
        options
            .world
            .clients
            .iter_mut()
            .find(|c| c.client_id == demo::DESKTOP_CLIENT_ID)
            .expect("desktop client")
            .callbacks
            .push(format!("http://127.0.0.1:{port}/callback"));
        let tenant = companion_devtenant::start(options)
            .await
            .expect("tenant starts");
        let settings = Settings::for_test(
            tenant.base_url(),
            demo::PROXY_CLIENT_ID,
            demo::PROXY_CLIENT_SECRET,
        )
        .expect("proxy settings");
        let (_, proxy_url) = serve_proxy(settings).await;
        Self {
            tenant,
            proxy_url,
            port,
            dir: tempfile::tempdir().expect("temp dir"),
            last_page: std::sync::Mutex::new(None),
        }
    }

    /// The loopback's page of the last [`Step::SignInForgedCode`], read to its end.
    pub(crate) fn last_page(&self) -> Option<String> {
        self.last_page.lock().expect("page slot").clone()
    }

    /// Where the browser command writes the URLs it is given, one per line.
    pub(crate) fn url_file(&self) -> PathBuf {
        self.dir.path().join("opened-urls")
    }

    /// The `passkeys` command with this world's environment (and nothing from the caller's `COMPANION_*`).
    pub(crate) fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = passkeys_command(self.dir.path(), &self.url_file());
        command
            .args(args)
            .env("COMPANION_AUTH0_URL", self.tenant.base_url())
            .env("COMPANION_CLIENT_ID", demo::DESKTOP_CLIENT_ID)
            .env("COMPANION_AUDIENCE", demo::API_AUDIENCE)
            .env("COMPANION_PROXY_URL", &self.proxy_url)
            .env("COMPANION_REDIRECT_PORTS", self.port.to_string());
        command
    }

    /// Runs `passkeys args` to completion.
    pub(crate) async fn run(&self, args: &[&str]) -> Output {
        run_to_end(self.command(args)).await
    }

    /// Runs `passkeys args` while playing the browser for every URL it opens (sign-ins).
    pub(crate) async fn run_with_browser(
        &self,
        args: &[&str],
        user: Browse,
        logins: usize,
    ) -> Output {
        self.run_with_browser_env(args, user, logins, &[]).await
    }

    /// As [`World::run_with_browser`], with extra environment variables.
    pub(crate) async fn run_with_browser_env(
        &self,
        args: &[&str],
        user: Browse,
        logins: usize,
        env: &[(&str, &str)],
    ) -> Output {
        let steps = vec![Step::SignIn(user); logins];
        self.run_steps(args, env, &steps).await
    }

    /// Runs `passkeys args`, handling each URL it opens with the next of `steps`.
    pub(crate) async fn run_steps(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        steps: &[Step],
    ) -> Output {
        let already =
            std::fs::read_to_string(self.url_file()).map_or(0, |text| text.lines().count());
        let child = self
            .command(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn passkeys");
        let output = tokio::spawn(child.wait_with_output());
        let browser = browser();
        for (offset, step) in steps.iter().enumerate() {
            let url = opened_url(&self.url_file(), already + offset).await;
            match step {
                Step::SignIn(user) => {
                    let page = play(&browser, &self.tenant, &url, *user, None).await;
                    assert!(
                        page.contains("You are signed in")
                            && page.contains("You can close this tab"),
                        "{page}"
                    );
                }
                Step::SignInForgedCode(user) => {
                    let page = play(&browser, &self.tenant, &url, *user, Some(FORGED_CODE)).await;
                    *self.last_page.lock().expect("page slot") = Some(page);
                }
                Step::FinishEnrollment => self.finish_enrollment(&url),
            }
        }
        tokio::time::timeout(Duration::from_secs(60), output)
            .await
            .expect("passkeys finishes")
            .expect("join")
            .expect("passkeys output")
    }

    /// Plays a user finishing the ticket page: the tenant now has a new security key for Alice ([`NEW_KEY`]).
    /// (The real WebAuthn ceremony on that page is exercised by the end-to-end suite with Chromium.)
    fn finish_enrollment(&self, url: &str) {
        assert!(
            url.starts_with(self.tenant.base_url()),
            "a ticket on the tenant: {url}"
        );
        self.tenant.state.store.write(|state| {
            let alice = state.user_mut(demo::ALICE_USER_ID).expect("alice");
            let mut key = alice
                .methods
                .iter()
                .find(|m| m.method.kind == companion_protocol::auth0::MethodType::WebauthnRoaming)
                .expect("alice has a roaming key")
                .clone();
            key.method.id = NEW_KEY.to_owned();
            key.method.name = Some("Spare key".to_owned());
            alice.methods.push(key);
        });
    }
}

/// The code [`Step::SignInForgedCode`] puts in the callback.
pub(crate) const FORGED_CODE: &str = "a-code-the-tenant-never-issued";

/// The id of the key [`World::finish_enrollment`] adds.
pub(crate) const NEW_KEY: &str = "webauthn-roaming|dev_cliSpareKey0001";

/// What to do with the next URL `passkeys` opens.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    /// A sign-in: play the login (and MFA) pages.
    SignIn(Browse),
    /// A sign-in whose callback carries a code the tenant never issued ([`FORGED_CODE`]), so the exchange is
    /// refused; the loopback's page is kept for [`World::last_page`].
    SignInForgedCode(Browse),
    /// An enrollment ticket: finish it.
    FinishEnrollment,
}

/// Who the test browser signs in as.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Browse {
    /// Alice: password, then TOTP when asked.
    Alice,
}

/// The test's browser: cookies kept, redirects not followed (the test follows them), a timeout.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("browser client")
}

/// Waits until the browser command has written its `index`-th URL (polling the file: it is another process).
pub(crate) async fn opened_url(file: &Path, index: usize) -> String {
    for _ in 0..600 {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Some(line) = text.lines().nth(index)
        {
            return line.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("passkeys never opened URL #{index}");
}

fn totp(tenant: &RunningTenant) -> String {
    let secret = totp_rs::Secret::Encoded(demo::ALICE_TOTP_SECRET.to_owned())
        .to_bytes()
        .expect("base32");
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret);
    totp.generate(u64::try_from(tenant.state.clock.unix()).expect("positive"))
}

/// Plays the browser from the authorize URL to the loopback callback (with its `code` replaced by `forged_code`,
/// when given) and returns the loopback's page, read to its end.
async fn play(
    browser: &reqwest::Client,
    tenant: &RunningTenant,
    url: &str,
    user: Browse,
    forged_code: Option<&str>,
) -> String {
    let Browse::Alice = user;
    let mut response = browser.get(url).send().await.expect("authorize");
    for _ in 0..10 {
        let location = response
            .headers()
            .get("location")
            .unwrap_or_else(|| panic!("a redirect from {}: {}", response.url(), response.status()))
            .to_str()
            .expect("ascii")
            .to_owned();
        let absolute = if location.starts_with('/') {
            url::Url::parse(&format!("{}{location}", tenant.base_url())).expect("url")
        } else {
            url::Url::parse(&location).expect("url")
        };
        let state = absolute
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        response = match absolute.path() {
            "/callback" => {
                let callback = match forged_code {
                    Some(code) => {
                        let pairs: Vec<(String, String)> = absolute
                            .query_pairs()
                            .map(|(k, v)| {
                                let v = if k == "code" {
                                    code.to_owned()
                                } else {
                                    v.into_owned()
                                };
                                (k.into_owned(), v)
                            })
                            .collect();
                        let mut forged = absolute.clone();
                        forged.query_pairs_mut().clear().extend_pairs(pairs);
                        forged
                    }
                    None => absolute,
                };
                let page = browser
                    .get(callback)
                    .send()
                    .await
                    .expect("the loopback answers with a whole response head");
                return page
                    .text()
                    .await
                    .expect("the loopback's page arrives whole (not cut off by passkeys exiting)");
            }
            "/u/login" => browser
                .post(tenant.url("/u/login"))
                .form(&[
                    ("state", state.as_str()),
                    ("username", demo::ALICE_EMAIL),
                    ("password", demo::PASSWORD),
                ])
                .send()
                .await
                .expect("login"),
            "/u/mfa" => browser
                .post(tenant.url("/u/mfa"))
                .form(&[("state", state.as_str()), ("code", totp(tenant).as_str())])
                .send()
                .await
                .expect("mfa"),
            _ => browser.get(absolute).send().await.expect("follow"),
        };
    }
    panic!("too many redirects");
}

/// Serves the proxy with `settings` (on the system clock) on a loopback port and returns its state and URL.
pub(crate) async fn serve_proxy(settings: Settings) -> (AppState, String) {
    let state =
        AppState::new(settings, Arc::new(companion_proxy::SystemClock)).expect("proxy state");
    state.warm_up().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind proxy");
    let proxy_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(companion_proxy::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    (state, proxy_url)
}

/// The `passkeys` binary with nothing from the caller's `COMPANION_*`, its config directory under `dir`, and as
/// its browser a command that appends each URL to `url_file`, one a line; stdout and stderr piped.
pub(crate) fn passkeys_command(dir: &Path, url_file: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_passkeys"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("COMPANION_") {
            command.env_remove(name);
        }
    }
    let browser = format!(
        "sh -c 'printf \"%s\\n\" \"$1\" >> \"$0\"' {}",
        url_file.display()
    );
    command
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("COMPANION_BROWSER", browser)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `command` to completion (60 s at most).
pub(crate) async fn run_to_end(mut command: tokio::process::Command) -> Output {
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("passkeys finishes")
        .expect("passkeys runs")
}

/// The refresh token in the Secret Service keyring for the provider at `issuer` and the desktop client, read
/// with libsecret's `secret-tool` (package libsecret-tools).
pub(crate) async fn keyring_secret(issuer: &str) -> Option<String> {
    let account = format!(
        "{}/{}",
        issuer.trim_start_matches("http://"),
        demo::DESKTOP_CLIENT_ID
    );
    let output = tokio::process::Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "passkey-companion",
            "username",
            &account,
        ])
        .output()
        .await
        .expect("secret-tool runs (package libsecret-tools)");
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Fails `test` unless a D-Bus session (for the Secret Service keyring) exists: nothing is skipped in this
/// project. `cargo xtask test` provides one, with an unlocked gnome-keyring.
pub(crate) fn require_keyring_session(test: &str) {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "{test} needs a D-Bus session with an unlocked Secret Service keyring and none exists \
         (DBUS_SESSION_BUS_ADDRESS is unset): run it under `cargo xtask test`, which runs every test inside \
         dbus-run-session with an unlocked gnome-keyring (README.md, step 4)"
    );
}

/// stdout as text.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A description of an output for assertion messages.
pub(crate) fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
