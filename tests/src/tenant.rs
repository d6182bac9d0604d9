//! An in-process dev tenant for end-to-end tests, and the calls tests make on it over HTTP.

use anyhow::{Context as _, anyhow, bail};
use companion_devtenant::faults::FaultSpec;
use companion_devtenant::store::Ticket;
use companion_devtenant::{RunningTenant, TenantOptions};
use companion_protocol::auth0::{
    AuthenticationMethod, AuthenticationMethodsResponse, TicketFactor,
};
use serde_json::Value;

/// The demo proxy client (M2M) of the default world.
pub const PROXY_CLIENT_ID: &str = "companion-proxy";
/// Its demo secret (a documented demo value of the local tenant, not a real secret).
pub const PROXY_CLIENT_SECRET: &str = "demo-proxy-secret";
/// The demo users' password.
pub const DEMO_PASSWORD: &str = "Passkeys-Demo-1";

/// A running dev tenant with the demo world.
#[derive(Debug)]
pub struct E2eTenant {
    /// The tenant (its store and clock are reachable for assertions).
    pub tenant: RunningTenant,
    http: reqwest::Client,
}

impl E2eTenant {
    /// Starts a tenant on an ephemeral port with the demo world.
    ///
    /// # Errors
    /// When it cannot start.
    pub async fn start() -> anyhow::Result<Self> {
        let tenant = companion_devtenant::start(TenantOptions::for_test())
            .await
            .context("dev tenant starts")?;
        Ok(Self {
            tenant,
            http: crate::http_client(),
        })
    }

    /// The base URL, `http://localhost:<port>`.
    pub fn base_url(&self) -> &str {
        self.tenant.base_url()
    }

    /// The user id of the demo user with `email`.
    ///
    /// # Errors
    /// When there is no such user.
    pub fn user_id(&self, email: &str) -> anyhow::Result<String> {
        self.tenant
            .state
            .store
            .read(|s| s.user_by_email(email).map(|u| u.user_id.clone()))
            .ok_or_else(|| anyhow!("no user {email} in the demo world"))
    }

    /// A Management API token for the demo proxy client, from `/oauth/token` (client credentials).
    ///
    /// # Errors
    /// When the tenant refuses.
    pub async fn m2m_token(&self) -> anyhow::Result<String> {
        let request = self
            .http
            .post(format!("{}/oauth/token", self.base_url()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", PROXY_CLIENT_ID),
                ("client_secret", PROXY_CLIENT_SECRET),
                ("audience", &self.tenant.state.mgmt_audience()),
            ]);
        string_field(
            &json_or_refused(request, "client_credentials").await?,
            "access_token",
        )
    }

    /// Creates an enrollment ticket for `factor` through the Management API
    /// (`POST /api/v2/guardian/enrollments/ticket`) and returns its `ticket_url`.
    ///
    /// # Errors
    /// When the tenant refuses.
    pub async fn create_ticket(&self, user_id: &str, factor: &str) -> anyhow::Result<String> {
        let token = self.m2m_token().await?;
        let request = self
            .http
            .post(format!(
                "{}/api/v2/guardian/enrollments/ticket",
                self.base_url()
            ))
            .bearer_auth(token)
            .json(&serde_json::json!({
                "user_id": user_id,
                "factor": factor,
                "allow_multiple_enrollments": true,
            }));
        string_field(
            &json_or_refused(request, "ticket creation").await?,
            "ticket_url",
        )
    }

    /// The user's methods as the Management API lists them (`GET /api/v2/users/{id}/authentication-methods`).
    ///
    /// # Errors
    /// When the tenant refuses or the body is not Auth0's shape.
    pub async fn methods(&self, user_id: &str) -> anyhow::Result<Vec<AuthenticationMethod>> {
        let token = self.m2m_token().await?;
        let encoded: String = url::form_urlencoded::byte_serialize(user_id.as_bytes()).collect();
        let response = self
            .http
            .get(format!(
                "{}/api/v2/users/{encoded}/authentication-methods",
                self.base_url()
            ))
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("listing methods refused ({status}): {text}");
        }
        let list: AuthenticationMethodsResponse = serde_json::from_str(&text)
            .with_context(|| format!("not Auth0's list shape: {text}"))?;
        Ok(list.into_methods())
    }

    /// Mints a ticket directly in the store (5-day expiry, multiple enrollments allowed) and returns its URL;
    /// for tests that are about the page, not the Management API.
    pub fn mint_ticket(&self, user_id: &str, factor: TicketFactor) -> String {
        let state = &self.tenant.state;
        let now = state.clock.unix();
        let ticket_id = companion_devtenant::webauthn::random_alphanumeric(32);
        state.store.write(|s| {
            s.tickets.insert(
                ticket_id.clone(),
                Ticket {
                    ticket_id: ticket_id.clone(),
                    user_id: user_id.to_owned(),
                    factor: Some(factor),
                    allow_multiple_enrollments: true,
                    created_at: now,
                    expires_at: now + 5 * 24 * 3600,
                    used_at: None,
                },
            );
        });
        companion_devtenant::enroll::ticket_url(self.base_url(), &ticket_id)
    }

    /// The user's methods as stored (no masking).
    ///
    /// # Errors
    /// When there is no such user.
    pub fn stored_methods(&self, user_id: &str) -> anyhow::Result<Vec<AuthenticationMethod>> {
        self.tenant
            .state
            .store
            .read(|s| {
                s.user(user_id)
                    .map(|u| u.methods.iter().map(|m| m.method.clone()).collect())
            })
            .ok_or_else(|| anyhow!("no user {user_id}"))
    }

    /// Adds a fault through the tenant's development controls (`POST /__dev/faults`, served with
    /// `--dev-controls`) and returns its id.
    ///
    /// # Errors
    /// When the tenant refuses the fault.
    pub async fn inject_fault(&self, spec: &FaultSpec) -> anyhow::Result<String> {
        let request = self
            .http
            .post(format!("{}/__dev/faults", self.base_url()))
            .json(spec);
        string_field(&json_or_refused(request, "fault").await?, "id")
    }

    /// The active faults (`GET /__dev/faults`), as JSON.
    ///
    /// # Errors
    /// When the tenant refuses.
    pub async fn faults(&self) -> anyhow::Result<Vec<Value>> {
        self.dev_list("faults").await
    }

    /// The Management calls the tenant answered, oldest first (`GET /__dev/mgmt-calls`), as JSON objects with
    /// `method`, `path`, `status` and `injected`.
    ///
    /// # Errors
    /// When the tenant refuses.
    pub async fn mgmt_calls(&self) -> anyhow::Result<Vec<Value>> {
        self.dev_list("mgmt-calls").await
    }

    async fn dev_list(&self, what: &str) -> anyhow::Result<Vec<Value>> {
        let request = self.http.get(format!("{}/__dev/{what}", self.base_url()));
        match json_or_refused(request, &format!("GET /__dev/{what}")).await? {
            Value::Array(items) => Ok(items),
            other => bail!("GET /__dev/{what} is not a list: {other}"),
        }
    }

    /// Stops the tenant.
    pub async fn shutdown(self) {
        self.tenant.shutdown().await;
    }
}

/// Sends `request` and returns its JSON body (`null` when it has none); fails with "`what` refused (status): body"
/// unless the answer is a success.
///
/// # Errors
/// When the request fails or the answer is not a success.
pub(crate) async fn json_or_refused(
    request: reqwest::RequestBuilder,
    what: &str,
) -> anyhow::Result<Value> {
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{what} refused ({status}): {body}");
    }
    Ok(body)
}

/// The string `field` of a JSON `body`.
fn string_field(body: &Value, field: &str) -> anyhow::Result<String> {
    body[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no {field} in {body}"))
}
