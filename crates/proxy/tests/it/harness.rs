//! The test world: the real dev tenant on port 0 in-process, the proxy on port 0 in-process against it, a manual
//! clock for the proxy, user tokens signed by the tenant's own keys with the claims the tenant issues, and a
//! typed HTTP client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use companion_devtenant::faults::FaultSpec;
use companion_devtenant::world::demo;
use companion_devtenant::{RunningTenant, TenantOptions};
use companion_mgmt::ManualClock;
use companion_protocol::api::ApiErrorBody;
use companion_protocol::claims::{AUTH_TIME_CLAIM, MFA_TIME_CLAIM};
use companion_proxy::AppState;
use companion_proxy::config::Settings;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::oneshot;

pub(crate) const ALICE: &str = demo::ALICE_USER_ID;
pub(crate) const BOB: &str = demo::BOB_USER_ID;
pub(crate) const ALICE_KEY: &str = "webauthn-roaming|dev_aliceYubiKey0001";
pub(crate) const ALICE_MAC: &str = "webauthn-platform|dev_aliceMacBook0001";
pub(crate) const ALICE_TOTP: &str = "totp|dev_aliceTotp0000001";
pub(crate) const ALICE_RECOVERY: &str = "recovery-code|dev_aliceRecovery001";

/// A running tenant and proxy.
pub(crate) struct World {
    pub(crate) tenant: RunningTenant,
    pub(crate) proxy: SocketAddr,
    pub(crate) state: AppState,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

/// A test HTTP client: no redirects, a timeout.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("test http client")
}

/// One proxy answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

impl Answer {
    /// The error body.
    pub(crate) fn error(&self) -> ApiErrorBody {
        serde_json::from_value(self.body.clone())
            .unwrap_or_else(|e| panic!("not an error body ({e}): {}", self.body))
    }

    /// The error code.
    pub(crate) fn code(&self) -> String {
        self.error().error.as_str().to_owned()
    }

    /// A header as text.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header").to_owned())
    }
}

impl World {
    /// Tenant and proxy, the proxy's JWKS and M2M token warmed.
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}, true).await
    }

    /// Tenant and proxy after `edit` adjusted the proxy settings; `warm` loads JWKS and token first.
    pub(crate) async fn start_with(edit: impl FnOnce(&mut Settings), warm: bool) -> Self {
        let tenant = companion_devtenant::start(TenantOptions::for_test())
            .await
            .expect("dev tenant starts");
        Self::start_proxy(tenant, edit, warm).await
    }

    /// The proxy against an already running tenant.
    pub(crate) async fn start_proxy(
        tenant: RunningTenant,
        edit: impl FnOnce(&mut Settings),
        warm: bool,
    ) -> Self {
        let mut settings = Settings::for_test(
            tenant.base_url(),
            demo::PROXY_CLIENT_ID,
            demo::PROXY_CLIENT_SECRET,
        )
        .expect("test settings");
        edit(&mut settings);
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let state = AppState::new(settings, clock.clone()).expect("proxy state");
        if warm {
            state.warm_up().await;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let proxy = listener.local_addr().expect("proxy address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(companion_proxy::serve(
            listener,
            state.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            tenant,
            proxy,
            state,
            clock,
            http: http_client(),
            stop: Some(stop),
        }
    }

    /// Stops the proxy and the tenant.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.tenant.shutdown().await;
    }

    /// Asks the proxy to stop (graceful: in-flight requests finish), leaving the tenant up.
    pub(crate) fn stop_proxy_only(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the tenant after [`World::stop_proxy_only`].
    pub(crate) async fn tenant_shutdown(self) {
        self.tenant.shutdown().await;
    }

    /// Stops only the tenant; the proxy keeps running against a dead upstream.
    pub(crate) async fn stop_tenant(mut self) -> Orphan {
        let stop = self.stop.take();
        self.tenant.shutdown().await;
        Orphan {
            proxy: self.proxy,
            http: self.http,
            stop,
        }
    }

    /// The proxy clock's current Unix second.
    pub(crate) fn now(&self) -> i64 {
        use companion_mgmt::Clock as _;
        self.clock.now_utc().unix_timestamp()
    }

    /// A URL on the proxy.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy)
    }

    /// The claims the dev tenant puts in a proxy-API access token for `sub` (design.md §4).
    pub(crate) fn claims(&self, sub: &str, mfa_age: Option<i64>) -> Value {
        let now = self.now();
        let mut claims = json!({
            "iss": self.tenant.issuer(),
            "sub": sub,
            "aud": [demo::API_AUDIENCE, format!("{}/userinfo", self.tenant.base_url())],
            "azp": demo::DESKTOP_CLIENT_ID,
            "iat": now,
            "exp": now + 3600,
            "scope": "openid profile email offline_access",
            AUTH_TIME_CLAIM: now - 10,
        });
        if let Some(age) = mfa_age {
            claims[MFA_TIME_CLAIM] = json!(now - age);
        }
        claims
    }

    /// Signs `claims` with the tenant's current key, as the tenant signs access tokens.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.tenant
            .state
            .keys
            .sign("JWT", claims)
            .expect("tenant signs")
    }

    /// An access token for `sub` with an MFA `mfa_age` seconds ago (or none).
    pub(crate) fn token(&self, sub: &str, mfa_age: Option<i64>) -> String {
        self.sign(&self.claims(sub, mfa_age))
    }

    /// Management API calls the tenant has answered so far.
    pub(crate) fn mgmt_calls(&self) -> usize {
        self.tenant.state.faults.mgmt_calls().len()
    }

    /// Management API calls with `method` so far.
    pub(crate) fn mgmt_calls_of(&self, method: &str) -> usize {
        self.tenant
            .state
            .faults
            .count_mgmt_calls(method, "/api/v2/")
    }

    /// Injects a fault into the tenant.
    pub(crate) fn fault(&self, spec: FaultSpec) {
        self.tenant.state.faults.add(spec).expect("valid fault");
    }

    /// Clears all faults.
    pub(crate) fn clear_faults(&self) {
        self.tenant.state.faults.clear();
    }

    /// Sends a request to the proxy.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("proxy answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `GET /v1/me/authenticators`.
    pub(crate) async fn list(&self, token: &str) -> Answer {
        self.send(
            reqwest::Method::GET,
            "/v1/me/authenticators",
            Some(token),
            None,
        )
        .await
    }

    /// `GET /v1/me/authenticators` with each token, all at once; the statuses in order.
    pub(crate) async fn concurrent_lists(&self, tokens: Vec<String>) -> Vec<u16> {
        let mut tasks = Vec::new();
        for token in tokens {
            let request = self
                .http
                .get(self.url("/v1/me/authenticators"))
                .header("authorization", format!("Bearer {token}"));
            tasks.push(tokio::spawn(async move {
                request
                    .send()
                    .await
                    .expect("proxy answers")
                    .status()
                    .as_u16()
            }));
        }
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.expect("request task"));
        }
        statuses
    }

    /// `PATCH /v1/me/authenticators/{raw_id}` (the id is put into the path as given).
    pub(crate) async fn rename(&self, token: &str, raw_id: &str, name: &str) -> Answer {
        self.send(
            reqwest::Method::PATCH,
            &format!("/v1/me/authenticators/{raw_id}"),
            Some(token),
            Some(json!({ "name": name })),
        )
        .await
    }

    /// `DELETE /v1/me/authenticators/{raw_id}`.
    pub(crate) async fn delete(&self, token: &str, raw_id: &str) -> Answer {
        self.send(
            reqwest::Method::DELETE,
            &format!("/v1/me/authenticators/{raw_id}"),
            Some(token),
            None,
        )
        .await
    }

    /// `POST /v1/me/enrollments`.
    pub(crate) async fn enroll(&self, token: &str, kind: &str) -> Answer {
        self.send(
            reqwest::Method::POST,
            "/v1/me/enrollments",
            Some(token),
            Some(json!({ "type": kind })),
        )
        .await
    }
}

/// A proxy whose tenant is gone.
pub(crate) struct Orphan {
    proxy: SocketAddr,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

impl Orphan {
    /// `GET /v1/me/authenticators`; the status and body.
    pub(crate) async fn list(&self, token: &str) -> Answer {
        let response = self
            .http
            .get(format!("http://{}/v1/me/authenticators", self.proxy))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .expect("proxy answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json().await.expect("json body");
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Stops the proxy.
    pub(crate) fn stop_proxy(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `id` percent-encoded for a path (`|` as `%7C`).
pub(crate) fn enc(id: &str) -> String {
    id.replace('|', "%7C")
}
