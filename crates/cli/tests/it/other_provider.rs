//! Interoperability: `passkeys` against a second, independent OpenID provider (panva's certified `oidc-provider`
//! on Node, `tests/oidc-provider/`), configured only through discovery and the five documented settings. The
//! proxy verifies that provider's access tokens (`COMPANION_ISSUER` / `COMPANION_JWKS_URL`) and reads methods
//! from the dev tenant's Management API.
//!
//! Node and the npm package are installed by `cargo xtask setup` (part of `cargo xtask test`); when they are
//! missing the test fails and says so rather than skipping.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use companion_devtenant::world::demo;
use companion_devtenant::{RunningTenant, TenantOptions};
use companion_protocol::auth0::AuthenticationMethod;
use companion_protocol::ids::UserId;
use companion_proxy::AppState;
use companion_proxy::config::{Issuer, Settings};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};

use crate::support::{
    browser, describe, keyring_secret, opened_url, passkeys_command, require_keyring_session,
    run_to_end, serve_proxy, stdout,
};

/// The loopback ports the CLI uses by default (`redirect_ports`), each registered as a redirect URI.
const DEFAULT_PORTS: std::ops::RangeInclusive<u16> = 53180..=53189;
const ALICE_NAME: &str = "Alice Example";

/// The provider's directory in the repository.
fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc-provider")
}

/// Fails (never skips) when Node or the provider's npm packages are missing.
fn assert_prerequisites() {
    let dir = provider_dir();
    let dir = dir.canonicalize().unwrap_or(dir);
    let setup = "run `cargo xtask setup` (or `cargo xtask test`, which runs it)";
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "setup failure: `node` is not on PATH ({node:?}); {setup}"
    );
    assert!(
        dir.join("node_modules/oidc-provider/package.json")
            .is_file(),
        "setup failure: the npm package oidc-provider is not installed in {}; {setup}",
        dir.display()
    );
}

/// The Node OpenID provider, a child process killed on drop; its stderr is kept for failure messages.
struct NodeProvider {
    issuer: String,
    log: Arc<Mutex<String>>,
    _child: tokio::process::Child,
}

impl NodeProvider {
    async fn start() -> Self {
        let dir = provider_dir();
        let settings = serde_json::json!({
            "client_id": demo::DESKTOP_CLIENT_ID,
            "redirect_uris": DEFAULT_PORTS
                .map(|port| format!("http://127.0.0.1:{port}/callback"))
                .collect::<Vec<_>>(),
            "resource": demo::API_AUDIENCE,
            "accounts": [{
                "sub": demo::ALICE_USER_ID,
                "email": demo::ALICE_EMAIL,
                "name": ALICE_NAME,
                "password": demo::PASSWORD,
            }],
        });
        let mut child = tokio::process::Command::new("node")
            .arg("server.js")
            .arg(settings.to_string())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node server.js");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().expect("piped stderr");
        let sink = log.clone();
        tokio::spawn(async move {
            let mut buffer = [0_u8; 4096];
            while let Ok(read) = stderr.read(&mut buffer).await {
                if read == 0 {
                    break;
                }
                sink.lock()
                    .expect("log lock")
                    .push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        let Ok(Ok(Some(line))) = first else {
            let status = child.try_wait();
            tokio::time::sleep(Duration::from_millis(200)).await;
            panic!(
                "the OpenID provider did not start ({first:?}, exit {status:?}); its stderr:\n{}",
                log.lock().expect("log lock")
            );
        };
        // Keep draining stdout: a closed pipe would end the provider at its next write.
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line is JSON");
        let issuer = ready["issuer"].as_str().expect("issuer").to_owned();
        Self {
            issuer,
            log,
            _child: child,
        }
    }

    fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }
}

/// The provider, the dev tenant (Management API only) and a proxy trusting the provider's tokens.
struct Interop {
    provider: NodeProvider,
    _tenant: RunningTenant,
    proxy: AppState,
    proxy_url: String,
    dir: tempfile::TempDir,
}

impl Interop {
    async fn start() -> Self {
        let provider = NodeProvider::start().await;
        let tenant = companion_devtenant::start(TenantOptions::for_test())
            .await
            .expect("tenant starts");
        let mut settings = Settings::for_test(
            tenant.base_url(),
            demo::PROXY_CLIENT_ID,
            demo::PROXY_CLIENT_SECRET,
        )
        .expect("proxy settings");
        settings.issuer = Issuer(provider.issuer.clone());
        settings.jwks_url = endpoint(&discovery(&provider.issuer).await, "jwks_uri");
        let (proxy, proxy_url) = serve_proxy(settings).await;
        Self {
            provider,
            _tenant: tenant,
            proxy,
            proxy_url,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn url_file(&self) -> PathBuf {
        self.dir.path().join("opened-urls")
    }

    /// `passkeys args` with only the five documented settings (and a private config directory).
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = passkeys_command(self.dir.path(), &self.url_file());
        command
            .args(args)
            .env("COMPANION_AUTH0_URL", &self.provider.issuer)
            .env("COMPANION_CLIENT_ID", demo::DESKTOP_CLIENT_ID)
            .env("COMPANION_AUDIENCE", demo::API_AUDIENCE)
            .env("COMPANION_PROXY_URL", &self.proxy_url);
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        run_to_end(self.command(args)).await
    }

    /// Describes a CLI run together with the provider's log.
    fn describe(&self, output: &Output) -> String {
        format!(
            "{}\nOpenID provider log:\n{}",
            describe(output),
            self.provider.log()
        )
    }

    /// The keyring entry of this provider's account.
    async fn keyring_secret(&self) -> Option<String> {
        keyring_secret(&self.provider.issuer).await
    }

    /// Alice's methods as the proxy reads them from the tenant.
    async fn alice_methods(&self) -> Vec<AuthenticationMethod> {
        let alice = UserId::parse(demo::ALICE_USER_ID).expect("alice's id");
        self.proxy
            .authenticators
            .list_shared(&alice)
            .await
            .expect("the proxy lists alice's methods")
            .to_vec()
    }
}

/// An HTTP client for the test's own calls: redirects off, a timeout.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// The provider's discovery document.
async fn discovery(issuer: &str) -> serde_json::Value {
    http()
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("discovery JSON")
}

fn endpoint(document: &serde_json::Value, name: &str) -> url::Url {
    let text = document[name]
        .as_str()
        .unwrap_or_else(|| panic!("discovery names {name}: {document}"));
    url::Url::parse(text).expect("an endpoint URL")
}

/// The `action` of the first `<form>` in an HTML page.
fn form_action(html: &str) -> Option<&str> {
    let form = &html[html.find("<form")?..];
    let start = form.find("action=\"")? + "action=\"".len();
    let end = form[start..].find('"')?;
    Some(&form[start..start + end])
}

/// Plays a browser from the authorize URL to the loopback callback: follows redirects and fills in the
/// provider's own login form (whatever its path), as Alice.
async fn play_browser(url: &str, log: &dyn Fn() -> String) {
    let browser = browser();
    let mut response = browser.get(url).send().await.expect("authorize");
    let mut logged_in = false;
    for _ in 0..12 {
        let here = response.url().clone();
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get("location")
                .expect("a redirect has a location")
                .to_str()
                .expect("ascii location");
            let next = here.join(location).expect("location URL");
            if next.path() == "/callback" {
                assert!(
                    next.query_pairs().any(|(k, _)| k == "code"),
                    "the provider sent an error instead of a code: {next}\n{}",
                    log()
                );
                let page = browser.get(next).send().await.expect("loopback answers");
                let text = page.text().await.expect("page");
                assert!(
                    text.contains("You are signed in"),
                    "the CLI finished the sign-in: {text}\n{}",
                    log()
                );
                return;
            }
            response = browser
                .get(next)
                .send()
                .await
                .unwrap_or_else(|e| panic!("follow: {e}\n{}", log()));
            continue;
        }
        let status = response.status();
        let html = response.text().await.expect("page");
        let action = match form_action(&html) {
            Some(action) if status.is_success() && !logged_in => action,
            _ => panic!("unexpected page {here} ({status}):\n{html}\n{}", log()),
        };
        logged_in = true;
        response = browser
            .post(here.join(action).expect("form action URL"))
            .form(&[
                ("username", demo::ALICE_EMAIL),
                ("password", demo::PASSWORD),
            ])
            .send()
            .await
            .expect("post the login form");
    }
    panic!("too many redirects\n{}", log());
}

#[tokio::test]
async fn login_status_list_and_logout_against_another_openid_provider() {
    assert_prerequisites();
    require_keyring_session("login_status_list_and_logout_against_another_openid_provider");
    let world = Interop::start().await;

    let child = world.command(&["login"]).spawn().expect("spawn passkeys");
    let mut output = tokio::spawn(child.wait_with_output());
    let url_file = world.url_file();
    let authorize = tokio::select! {
        url = opened_url(&url_file, 0) => url,
        finished = &mut output => {
            let finished = finished.expect("join").expect("passkeys output");
            panic!("passkeys login ended without opening the browser: {}", world.describe(&finished));
        }
    };
    let document = discovery(&world.provider.issuer).await;
    let authorize = url::Url::parse(&authorize).expect("authorize URL");
    let expected_endpoint = endpoint(&document, "authorization_endpoint");
    assert_eq!(
        authorize[..url::Position::AfterPath],
        expected_endpoint[..url::Position::AfterPath],
        "the discovered authorization_endpoint"
    );
    let query: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(
        query.get("resource").map(String::as_str),
        Some(demo::API_AUDIENCE),
        "the API as an RFC 8707 resource indicator: {authorize}"
    );
    assert_eq!(
        query.get("code_challenge_method").map(String::as_str),
        Some("S256"),
        "{authorize}"
    );
    let authorize = authorize.to_string();
    let log = || world.provider.log();
    play_browser(&authorize, &log).await;
    let login = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("passkeys login finishes")
        .expect("join")
        .expect("passkeys output");
    assert_eq!(login.status.code(), Some(0), "{}", world.describe(&login));

    let status = world.run(&["status", "--json"]).await;
    assert_eq!(status.status.code(), Some(0), "{}", world.describe(&status));
    let json: serde_json::Value = serde_json::from_str(&stdout(&status)).expect("status JSON");
    assert_eq!(json["signed_in"], true, "{json}");
    assert_eq!(json["sub"], demo::ALICE_USER_ID, "{json}");

    let listed = world.run(&["list", "--json"]).await;
    assert_eq!(listed.status.code(), Some(0), "{}", world.describe(&listed));
    let json: serde_json::Value = serde_json::from_str(&stdout(&listed)).expect("list JSON");
    let methods = world.alice_methods().await;
    let expected =
        serde_json::to_value(world.proxy.authenticators.present(&methods)).expect("JSON");
    assert!(
        expected["authenticators"]
            .as_array()
            .is_some_and(|list| !list.is_empty()),
        "alice has methods: {expected}"
    );
    assert_eq!(json, expected, "the proxy's answer for alice, unchanged");

    // A change goes through the proxy with this provider's token too (renaming needs no step-up).
    let key = expected["authenticators"]
        .as_array()
        .and_then(|list| list.iter().find(|a| a["type"] == "webauthn-roaming"))
        .and_then(|a| a["id"].as_str())
        .expect("alice has a security key")
        .to_owned();
    let renamed = world.run(&["rename", &key, "Interop key"]).await;
    assert_eq!(
        renamed.status.code(),
        Some(0),
        "{}",
        world.describe(&renamed)
    );
    let methods = world.alice_methods().await;
    assert!(
        methods
            .iter()
            .any(|m| m.id.as_str() == key && m.name.as_deref() == Some("Interop key")),
        "the tenant has the new name"
    );

    let refresh_token = world
        .keyring_secret()
        .await
        .expect("the refresh token is in the keyring");
    let logout = world.run(&["logout"]).await;
    assert_eq!(logout.status.code(), Some(0), "{}", world.describe(&logout));
    assert_eq!(world.keyring_secret().await, None, "the entry is deleted");

    // The provider revoked it: a refresh with the last stored token now fails there.
    let reuse = http()
        .post(endpoint(&document, "token_endpoint"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", demo::DESKTOP_CLIENT_ID),
            ("refresh_token", refresh_token.as_str()),
        ])
        .send()
        .await
        .expect("token endpoint answers");
    assert_eq!(reuse.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: serde_json::Value = reuse.json().await.expect("OAuth error JSON");
    assert_eq!(body["error"], "invalid_grant", "{body}");

    let status = world.run(&["status", "--json"]).await;
    assert_eq!(status.status.code(), Some(1), "{}", world.describe(&status));
}
