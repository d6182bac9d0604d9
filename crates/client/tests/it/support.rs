//! Test harness: an in-process dev tenant whose desktop client accepts our loopback port, sessions against it,
//! and a scripted browser (an HTTP client that follows the authorize redirects, fills the login and MFA forms,
//! and lets the final redirect hit the loopback listener).

use std::sync::{Arc, Mutex};

use companion_client::browser::LaunchError;
use companion_client::clock::SystemClock;
use companion_client::config::ClientConfig;
use companion_client::loopback::LoopbackListener;
use companion_client::session::Session;
use companion_client::store::{MemoryStore, TokenStore};
use companion_devtenant::world::demo;
use companion_devtenant::{RunningTenant, TenantOptions};
use tokio::sync::mpsc;
use url::Url;

/// A tenant whose desktop client also accepts `http://127.0.0.1:<port>/callback` for each of `ports`.
pub(crate) async fn tenant_for(ports: &[u16]) -> RunningTenant {
    tenant_with(TenantOptions::for_test(), ports).await
}

/// As [`tenant_for`], from given options.
pub(crate) async fn tenant_with(mut options: TenantOptions, ports: &[u16]) -> RunningTenant {
    let desktop = options
        .world
        .clients
        .iter_mut()
        .find(|c| c.client_id == demo::DESKTOP_CLIENT_ID)
        .expect("the demo world has the desktop client");
    for port in ports {
        desktop
            .callbacks
            .push(format!("http://127.0.0.1:{port}/callback"));
    }
    companion_devtenant::start(options)
        .await
        .expect("the dev tenant starts")
}

/// A listener on an ephemeral port, and a tenant that accepts it.
pub(crate) async fn listener_and_tenant() -> (LoopbackListener, RunningTenant) {
    let listener = LoopbackListener::bind(&[0]).await.expect("bind loopback");
    let tenant = tenant_for(&[listener.port()]).await;
    (listener, tenant)
}

/// A client configuration against `tenant` (the proxy URL is a placeholder unless given).
pub(crate) fn config(tenant: &RunningTenant, proxy: Option<&Url>, ports: Vec<u16>) -> ClientConfig {
    ClientConfig::for_test(
        Url::parse(tenant.base_url()).expect("tenant url"),
        demo::DESKTOP_CLIENT_ID,
        proxy
            .cloned()
            .unwrap_or_else(|| Url::parse("http://127.0.0.1:9").expect("url")),
        ports,
    )
}

/// A session with `store`.
pub(crate) fn session(tenant: &RunningTenant, store: Arc<dyn TokenStore>) -> Session {
    Session::new(config(tenant, None, vec![0]), store, Arc::new(SystemClock)).expect("session")
}

/// A session with a fresh memory store, and that store.
pub(crate) fn memory_session(tenant: &RunningTenant) -> (Session, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    (session(tenant, store.clone()), store)
}

/// Who the scripted browser signs in as.
#[derive(Debug, Clone, Copy)]
pub(crate) enum User {
    /// Password only.
    Bob,
    /// Password, then TOTP when asked.
    Alice,
}

/// What the scripted browser saw at the end: the loopback page's status and body.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The authorize URL it was given.
    pub(crate) authorize_url: Url,
    /// Status of the loopback's answer.
    pub(crate) status: u16,
    /// Body of the loopback's answer.
    pub(crate) page: String,
}

type LaunchFn = dyn Fn(&Url) -> Result<(), LaunchError> + Send + Sync;

/// A scripted browser: a launcher closure and the channel that reports what happened.
pub(crate) struct ScriptedBrowser {
    /// Reports one result per opened URL.
    pub(crate) results: mpsc::UnboundedReceiver<Result<Finished, String>>,
    launcher: Arc<LaunchFn>,
}

impl ScriptedBrowser {
    /// A browser that signs in as `user`; `tamper` may rewrite the callback URL before it is requested.
    /// It runs on the runtime it is created on, even when the sign-in runs on another one.
    pub(crate) fn new(tenant: &RunningTenant, user: User, tamper: Option<fn(Url) -> Url>) -> Self {
        let runtime = tokio::runtime::Handle::current();
        let (tx, results) = mpsc::unbounded_channel();
        let base = tenant.base_url().to_owned();
        let clock = tenant.state.clock.clone();
        // One cookie jar across sign-ins, like a real browser profile.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("browser client");
        let tx = Arc::new(Mutex::new(tx));
        let launcher = move |url: &Url| -> Result<(), LaunchError> {
            let (url, base, http, clock, tx) = (
                url.clone(),
                base.clone(),
                http.clone(),
                clock.clone(),
                tx.clone(),
            );
            runtime.spawn(async move {
                let result = drive(&http, &base, &url, user, clock.as_ref(), tamper).await;
                let _ = tx.lock().expect("sender").send(result);
            });
            Ok(())
        };
        Self {
            results,
            launcher: Arc::new(launcher),
        }
    }

    /// The launcher to hand to the client.
    pub(crate) fn launcher(
        &self,
    ) -> impl Fn(&Url) -> Result<(), LaunchError> + Send + Sync + 'static {
        let launcher = self.launcher.clone();
        move |url: &Url| launcher(url)
    }

    /// The next result.
    pub(crate) async fn next(&mut self) -> Finished {
        match self.results.recv().await {
            Some(Ok(finished)) => finished,
            Some(Err(error)) => panic!("the scripted browser failed: {error}"),
            None => panic!("the scripted browser is gone"),
        }
    }
}

fn location(response: &reqwest::Response) -> Result<String, String> {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "expected a redirect from {}, got {}",
                response.url(),
                response.status()
            )
        })
}

fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The current TOTP code of Alice by the tenant's clock.
pub(crate) fn alice_totp(clock: &dyn companion_devtenant::clock::Clock) -> String {
    let secret = totp_rs::Secret::Encoded(demo::ALICE_TOTP_SECRET.to_owned())
        .to_bytes()
        .expect("base32 secret");
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret);
    totp.generate(u64::try_from(clock.unix()).expect("positive time"))
}

async fn drive(
    http: &reqwest::Client,
    base: &str,
    authorize_url: &Url,
    user: User,
    clock: &dyn companion_devtenant::clock::Clock,
    tamper: Option<fn(Url) -> Url>,
) -> Result<Finished, String> {
    let err = |e: reqwest::Error| e.to_string();
    let mut response = http.get(authorize_url.clone()).send().await.map_err(err)?;
    for _ in 0..10 {
        let next = location(&response)?;
        let absolute = if next.starts_with('/') {
            Url::parse(&format!("{base}{next}")).map_err(|e| e.to_string())?
        } else {
            Url::parse(&next).map_err(|e| e.to_string())?
        };
        if absolute.host_str() == Some("127.0.0.1") {
            let callback = match tamper {
                Some(tamper) => tamper(absolute),
                None => absolute,
            };
            let page = http.get(callback).send().await.map_err(err)?;
            let status = page.status().as_u16();
            let page = page.text().await.map_err(err)?;
            return Ok(Finished {
                authorize_url: authorize_url.clone(),
                status,
                page,
            });
        }
        let state = query_param(&absolute, "state").unwrap_or_default();
        response = match absolute.path() {
            "/u/login" => {
                let email = match user {
                    User::Bob => demo::BOB_EMAIL,
                    User::Alice => demo::ALICE_EMAIL,
                };
                http.post(format!("{base}/u/login"))
                    .form(&[
                        ("state", state.as_str()),
                        ("username", email),
                        ("password", demo::PASSWORD),
                    ])
                    .send()
                    .await
                    .map_err(err)?
            }
            "/u/mfa" => {
                let code = alice_totp(clock);
                http.post(format!("{base}/u/mfa"))
                    .form(&[("state", state.as_str()), ("code", code.as_str())])
                    .send()
                    .await
                    .map_err(err)?
            }
            // Anything else on the tenant (e.g. an SSO hop): follow it.
            _ => http.get(absolute).send().await.map_err(err)?,
        };
    }
    Err("too many redirects".to_owned())
}

/// Decodes a JWT's payload without verifying it (tests only: to read claims of a token we just received).
pub(crate) fn jwt_payload(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

/// Tries a refresh token directly at the tenant; returns the HTTP status and the OAuth `error`, if any.
pub(crate) async fn try_refresh(
    tenant: &RunningTenant,
    refresh_token: &str,
) -> (u16, Option<String>) {
    let response = reqwest::Client::builder()
        .build()
        .expect("client")
        .post(tenant.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", demo::DESKTOP_CLIENT_ID),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .expect("token endpoint answers");
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (status, body["error"].as_str().map(str::to_owned))
}
