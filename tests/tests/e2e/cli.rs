//! The `passkeys` CLI end to end: the real binary against an in-process dev tenant and proxy, configured the way a
//! managed install is (its settings in a managed file, here through `COMPANION_MANAGED_CONFIG`), with headless
//! Chromium as the system browser (`COMPANION_BROWSER` hands every URL to the test, which plays it there).
//!
//! Scenario: `login` (login form) → the refresh token is in the Secret Service keyring and in no file under the
//! CLI's HOME → `status` → `enroll roaming` (step-up with TOTP, then the ticket page registers a virtual security
//! key; the CLI's poll prints the new method) → `list --json` has it → `rename` → `remove` (step-up answered by
//! that same virtual key) → gone at the tenant → `logout` (keyring entry deleted, refresh token revoked at the
//! tenant).
//! Needs a D-Bus session with an unlocked keyring and `secret-tool`, as `cargo xtask test` provides.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use companion_e2e::browser::{Browser, VirtualAuthenticator};
use companion_e2e::proxy::{ProxyClock, start_proxy};
use companion_e2e::serial;
use companion_e2e::signin::{ALICE, Mfa, PAGE_TIMEOUT, enroll_in_browser, sign_in_in_browser};
use companion_e2e::tenant::E2eTenant;
use companion_e2e::window::UrlInbox;
use serde_json::Value;

/// How long one `passkeys` command may take, browser steps included.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
const DESKTOP_CLIENT_ID: &str = "companion-desktop";
const API_AUDIENCE: &str = "https://passkey-companion/api";
/// Alice's seeded security key, whose credential no virtual authenticator holds.
const ALICE_SEEDED_KEY: &str = "webauthn-roaming|dev_aliceYubiKey0001";

/// The workspace root (this crate lives in `tests/`).
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the `passkeys` binary (debug) with the cargo that runs the tests and returns its path.
fn build_passkeys() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "-p", "passkeys", "--bin", "passkeys"])
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .status()
        .context("running cargo build -p passkeys")?;
    ensure!(status.success(), "cargo build -p passkeys failed: {status}");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let binary = target.join("debug").join("passkeys");
    ensure!(
        binary.is_file(),
        "the passkeys binary is missing at {}",
        binary.display()
    );
    Ok(binary)
}

/// The CLI's world: its binary, its HOME with the managed settings file, and the inbox its browser command fills.
struct Cli {
    binary: PathBuf,
    home: tempfile::TempDir,
    managed: PathBuf,
    inbox: UrlInbox,
}

/// A `passkeys` command running in the background.
struct Running {
    args: String,
    output: tokio::task::JoinHandle<std::io::Result<Output>>,
}

impl Cli {
    fn new(binary: PathBuf, tenant: &E2eTenant, proxy_url: &str) -> anyhow::Result<Self> {
        let home = tempfile::Builder::new().prefix("e2e-cli-home-").tempdir()?;
        for dir in ["config", "data", "cache", "state", "runtime"] {
            std::fs::create_dir_all(home.path().join(dir))?;
        }
        // What `companion-admin export` writes for IT to deploy as /etc/passkey-companion/config.toml.
        let managed = home.path().join("managed").join("config.toml");
        std::fs::create_dir_all(managed.parent().context("a folder")?)?;
        std::fs::write(
            &managed,
            format!(
                "auth0_url = \"{}\"\nclient_id = \"{DESKTOP_CLIENT_ID}\"\naudience = \"{API_AUDIENCE}\"\n\
                 proxy_url = \"{proxy_url}\"\nenrollment_types = [\"webauthn-platform\", \"webauthn-roaming\"]\n",
                tenant.base_url()
            ),
        )?;
        Ok(Self {
            binary,
            home,
            managed,
            inbox: UrlInbox::new()?,
        })
    }

    /// `passkeys args` with only this world's configuration: no inherited `COMPANION_*`, HOME and the XDG folders
    /// in the scratch HOME; the D-Bus session (and so the keyring) is inherited.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.binary);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("COMPANION_") {
                command.env_remove(name);
            }
        }
        let home = self.home.path();
        command
            .args(args)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_STATE_HOME", home.join("state"))
            .env("COMPANION_MANAGED_CONFIG", &self.managed)
            .env("COMPANION_BROWSER", self.inbox.command())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `passkeys args` to completion.
    async fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        tokio::time::timeout(COMMAND_TIMEOUT, self.command(args).output())
            .await
            .with_context(|| format!("passkeys {} did not finish", args.join(" ")))?
            .context("running passkeys")
    }

    /// Starts `passkeys args` in the background.
    fn start(&self, args: &[&str]) -> anyhow::Result<Running> {
        let child = self.command(args).spawn().context("spawning passkeys")?;
        Ok(Running {
            args: args.join(" "),
            output: tokio::spawn(child.wait_with_output()),
        })
    }

    /// The next URL `running` opens; fails with its output if it exits first.
    async fn next_url(&mut self, running: &mut Running) -> anyhow::Result<String> {
        tokio::select! {
            url = self.inbox.next(PAGE_TIMEOUT) => url,
            finished = &mut running.output => {
                let output = finished.context("join")?.context("passkeys output")?;
                bail!(
                    "passkeys {} exited before opening a URL: {}",
                    running.args,
                    describe(&output)
                )
            }
        }
    }
}

impl Running {
    /// Waits for the command to exit and returns its output.
    async fn finish(self) -> anyhow::Result<Output> {
        tokio::time::timeout(COMMAND_TIMEOUT, self.output)
            .await
            .with_context(|| format!("passkeys {} did not finish", self.args))?
            .context("join")?
            .context("passkeys output")
    }
}

/// An output for assertion messages.
fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Checks the exit code and returns stdout.
fn expect_exit(output: &Output, code: i32, what: &str) -> anyhow::Result<String> {
    ensure!(
        output.status.code() == Some(code),
        "{what}: expected exit {code}: {}",
        describe(output)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The refresh token in the Secret Service keyring for this tenant and client, read with libsecret's
/// `secret-tool` (package libsecret-tools).
async fn keyring_secret(tenant: &E2eTenant) -> anyhow::Result<Option<String>> {
    let account = format!(
        "{}/{DESKTOP_CLIENT_ID}",
        tenant.base_url().trim_start_matches("http://")
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
        .context("running secret-tool (package libsecret-tools)")?;
    Ok(output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|s| !s.is_empty()))
}

/// Fails when any file under `dir` contains `secret`.
fn assert_not_on_disk(dir: &Path, secret: &str) -> anyhow::Result<usize> {
    let mut files = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files += assert_not_on_disk(&path, secret)?;
        } else if let Ok(bytes) = std::fs::read(&path) {
            files += 1;
            ensure!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "the refresh token is on disk in {}",
                path.display()
            );
        }
    }
    Ok(files)
}

/// Whether the tenant still honours `refresh_token` (a refresh grant for the desktop client).
async fn refresh_works(tenant: &E2eTenant, refresh_token: &str) -> anyhow::Result<bool> {
    let response = companion_e2e::http_client()
        .post(format!("{}/oauth/token", tenant.base_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", DESKTOP_CLIENT_ID),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await?;
    Ok(response.status().is_success())
}

fn ids(list: &Value) -> Vec<String> {
    list["authenticators"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|a| a["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_enrolls_a_security_key_in_chromium_and_removes_it_with_step_up()
-> anyhow::Result<()> {
    let _serial = serial().await;
    let started = Instant::now();
    ensure!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "setup failure: no D-Bus session with an unlocked keyring; run under `cargo xtask test` \
         (dbus-run-session + gnome-keyring)"
    );
    ensure!(
        !Path::new("/etc/passkey-companion/config.toml").exists(),
        "setup failure: /etc/passkey-companion/config.toml exists, and a real managed file always wins over \
         COMPANION_MANAGED_CONFIG"
    );
    let binary = build_passkeys()?;
    let built = started.elapsed();

    let tenant = E2eTenant::start().await?;
    let alice = tenant.user_id(ALICE)?;
    let proxy_clock = ProxyClock::default();
    let proxy_url = start_proxy(&tenant, proxy_clock.clone()).await?;
    let mut cli = Cli::new(binary, &tenant, &proxy_url)?;

    // The settings are the managed layer, locked.
    let config = cli.run(&["config", "--json"]).await?;
    let config: Value = serde_json::from_str(&expect_exit(&config, 0, "config")?)?;
    ensure!(
        config["managed"]["location"] == cli.managed.display().to_string().as_str()
            && config["managed"]["dev_override"] == true,
        "passkeys config names the managed file: {config}"
    );
    for key in ["auth0_url", "client_id", "proxy_url"] {
        let entry = config["entries"]
            .as_array()
            .and_then(|entries| entries.iter().find(|e| e["key"] == key))
            .with_context(|| format!("{key} in {config}"))?;
        ensure!(
            entry["layer"] == "managed" && entry["locked"] == true,
            "{key} is managed and locked: {entry}"
        );
    }
    let status = cli.run(&["status", "--json"]).await?;
    expect_exit(&status, 1, "status while signed out")?;
    ensure!(
        keyring_secret(&tenant).await?.is_none(),
        "no keyring entry before login"
    );

    let browser = Browser::start("cli").await?;
    let key = browser
        .add_authenticator(VirtualAuthenticator::PresenceOnlyUsbKey)
        .await?;

    // login: the authorize URL goes to the browser, the login form, then the loopback page.
    let mut login = cli.start(&["login", "--timeout", "60"])?;
    let url = cli.next_url(&mut login).await?;
    ensure!(
        url.starts_with(tenant.base_url())
            && url.contains("code_challenge_method=S256")
            && url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "an authorize URL with PKCE and a loopback redirect: {url}"
    );
    sign_in_in_browser(&browser, &url, ALICE, Mfa::None, "the CLI").await?;
    let login = login.finish().await?;
    expect_exit(&login, 0, "login")?;
    let stderr = String::from_utf8_lossy(&login.stderr);
    ensure!(
        stderr.contains("Signed in as") && !stderr.contains("not saved"),
        "signed in and saved: {}",
        describe(&login)
    );
    let refresh_token = keyring_secret(&tenant)
        .await?
        .context("the refresh token is in the keyring after login")?;
    let scanned = assert_not_on_disk(cli.home.path(), &refresh_token)?;

    let status = cli.run(&["status", "--json"]).await?;
    let status: Value = serde_json::from_str(&expect_exit(&status, 0, "status")?)?;
    ensure!(
        status["signed_in"] == true && status["sub"] == alice.as_str(),
        "signed in as alice: {status}"
    );

    // enroll roaming: the proxy wants a recent MFA (TOTP), then the ticket page registers the virtual key and the
    // CLI's poll sees the new method.
    let before = tenant.stored_methods(&alice)?.len();
    let mut enroll = cli.start(&["enroll", "roaming", "--json", "--timeout", "60"])?;
    let step_up = cli.next_url(&mut enroll).await?;
    ensure!(
        step_up.contains("acr_values=") && step_up.contains("max_age=0"),
        "enrolling asks for a step-up first: {step_up}"
    );
    sign_in_in_browser(&browser, &step_up, ALICE, Mfa::Totp, "the CLI").await?;
    let ticket = cli.next_url(&mut enroll).await?;
    ensure!(
        ticket.starts_with(tenant.base_url()),
        "the CLI opened the tenant's enrollment ticket: {ticket}"
    );
    enroll_in_browser(&browser, &ticket, "Add a security key").await?;
    let enroll = enroll.finish().await?;
    let added: Value = serde_json::from_str(&expect_exit(&enroll, 0, "enroll roaming")?)
        .with_context(|| format!("enroll --json prints the method: {}", describe(&enroll)))?;
    let credentials = browser.credentials(&key).await?;
    ensure!(
        credentials.len() == 1,
        "the virtual key holds the new credential: {credentials:?}"
    );
    let credential = &credentials[0];
    let stored = tenant.stored_methods(&alice)?;
    ensure!(stored.len() == before + 1, "one method more: {stored:?}");
    let method = stored
        .iter()
        .find(|m| m.key_id.as_deref() == Some(credential.credential_id.as_str()))
        .with_context(|| format!("the tenant stored the virtual key's credential: {stored:?}"))?;
    let id = added["id"]
        .as_str()
        .context("the new method's id")?
        .to_owned();
    ensure!(
        id == method.id && id != ALICE_SEEDED_KEY,
        "the CLI printed the new method ({id}), the tenant stored {}",
        method.id
    );
    ensure!(
        added["type"] == "webauthn-roaming",
        "a security key: {added}"
    );

    let listed = cli.run(&["list", "--json"]).await?;
    let list: Value = serde_json::from_str(&expect_exit(&listed, 0, "list --json")?)?;
    ensure!(
        list.as_object().is_some_and(|o| o.len() == 1) && ids(&list).contains(&id),
        "the proxy's list with the new key: {list}"
    );

    let renamed = cli.run(&["rename", &id, "CLI key"]).await?;
    ensure!(
        expect_exit(&renamed, 0, "rename")?.contains("CLI key"),
        "{}",
        describe(&renamed)
    );
    ensure!(
        tenant
            .stored_methods(&alice)?
            .iter()
            .any(|m| m.id == id && m.name.as_deref() == Some("CLI key")),
        "the tenant has the new name"
    );

    // remove: the enrollment's MFA is still recent, so the proxy's clock moves ten minutes on until the step-up
    // is asked for; the same virtual key answers it.
    proxy_clock.skew(Duration::from_secs(600));
    let mut remove = cli.start(&["remove", &id, "--yes"])?;
    let step_up = cli.next_url(&mut remove).await;
    proxy_clock.skew(Duration::ZERO);
    let step_up = step_up?;
    ensure!(
        step_up.contains("acr_values=") && step_up.contains("max_age=0"),
        "removing asks for a step-up: {step_up}"
    );
    sign_in_in_browser(&browser, &step_up, ALICE, Mfa::SecurityKey, "the CLI").await?;
    let remove = remove.finish().await?;
    let removed = expect_exit(&remove, 0, "remove")?;
    ensure!(
        removed.contains("Removed") && removed.contains("You can still sign in with"),
        "{}",
        describe(&remove)
    );
    let after_step_up = browser.credentials(&key).await?;
    ensure!(
        after_step_up
            .first()
            .is_some_and(|c| c.sign_count > credential.sign_count),
        "the virtual key signed the step-up assertion: {after_step_up:?}"
    );
    ensure!(
        tenant.stored_methods(&alice)?.iter().all(|m| m.id != id),
        "the tenant no longer has {id}"
    );
    let listed = cli.run(&["list", "--json"]).await?;
    let list: Value = serde_json::from_str(&expect_exit(&listed, 0, "list --json")?)?;
    ensure!(!ids(&list).contains(&id), "{id} is gone: {list}");

    // The session's refresh token (rotated by now) is in the keyring and still on no disk.
    let current = keyring_secret(&tenant)
        .await?
        .context("the refresh token is in the keyring")?;
    assert_not_on_disk(cli.home.path(), &current)?;

    // logout: the keyring entry goes and the token is revoked at the tenant.
    let logout = cli.run(&["logout"]).await?;
    ensure!(
        expect_exit(&logout, 0, "logout")?.contains("Signed out"),
        "{}",
        describe(&logout)
    );
    ensure!(
        keyring_secret(&tenant).await?.is_none(),
        "logout deletes the keyring entry"
    );
    ensure!(
        !refresh_works(&tenant, &current).await?,
        "logout revoked the refresh token"
    );
    let status = cli.run(&["status", "--json"]).await?;
    expect_exit(&status, 1, "status after logout")?;

    browser.close().await;
    tenant.shutdown().await;
    eprintln!(
        "cli e2e: passkeys built in {built:?}, whole scenario {:?}; {scanned} files under HOME scanned for the token",
        started.elapsed()
    );
    Ok(())
}
