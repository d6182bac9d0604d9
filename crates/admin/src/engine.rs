//! The provisioning engine: one pass over the steps that either records what would change ([`plan`]) or also
//! makes the change ([`apply`]). Every step reads the tenant first and writes only what differs from the spec.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use companion_mgmt::{Method, MgmtClient, MgmtError, Operation, OtherOperation};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::AdminError;
use crate::spec::TenantSpec;

/// The post-login Action's source, deployed as is plus a settings stamp.
pub const ACTION_CODE: &str = include_str!("../actions/post-login.js");
/// The Action runtime.
const RUNTIME: &str = "node22";
/// Largest page read by list calls.
const PER_PAGE: usize = 50;
/// Upper bound on pages read by list calls.
const MAX_PAGES: usize = 100;

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeKind {
    /// Something is created.
    Create,
    /// Something is changed.
    Update,
    /// Something is removed.
    Delete,
    /// The Action is deployed.
    Deploy,
}

/// One change to the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What it does.
    pub kind: ChangeKind,
    /// What it is about, e.g. `client "Passkey Companion (desktop)"`.
    pub subject: String,
    /// Field-level details, e.g. `app_type: "spa" -> "native"`.
    pub details: Vec<String>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.kind {
            ChangeKind::Create => "+ create",
            ChangeKind::Update => "~ update",
            ChangeKind::Delete => "- delete",
            ChangeKind::Deploy => "> deploy",
        };
        write!(f, "{sign} {}", self.subject)?;
        for detail in &self.details {
            write!(f, "\n    {detail}")?;
        }
        Ok(())
    }
}

/// What a run found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The changes (planned, or made by [`apply`]), in order.
    pub changes: Vec<Change>,
    /// Differences found that the spec does not allow (e.g. a grant wider than the spec), fixed by [`apply`].
    pub drift: Vec<String>,
    /// The desktop client's id, when it exists.
    pub desktop_client_id: Option<String>,
    /// The proxy client's id, when it exists.
    pub proxy_client_id: Option<String>,
    /// The file the proxy's client secret was written to, if asked.
    pub secrets_written: Option<PathBuf>,
}

impl Outcome {
    /// Whether nothing differs from the spec.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.drift.is_empty()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for drift in &self.drift {
            writeln!(f, "! drift: {drift}")?;
        }
        if self.changes.is_empty() {
            return writeln!(f, "No changes: the tenant matches the spec.");
        }
        for change in &self.changes {
            writeln!(f, "{change}")?;
        }
        writeln!(f, "{} change(s).", self.changes.len())
    }
}

/// Options of [`apply`].
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Where to write the proxy client's secret (mode 0600), if anywhere. Nothing secret is printed otherwise.
    pub secrets_out: Option<PathBuf>,
    /// How long to wait for the Action's build.
    pub build_timeout: Duration,
    /// Pause between two reads of the Action while it builds.
    pub build_poll: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            secrets_out: None,
            build_timeout: Duration::from_secs(60),
            build_poll: Duration::from_millis(500),
        }
    }
}

/// Reads the tenant and returns what [`apply`] would change. Sends GETs only.
///
/// # Errors
/// [`AdminError`] naming the step.
pub async fn plan(client: &MgmtClient, spec: &TenantSpec) -> Result<Outcome, AdminError> {
    spec.validate()?;
    let mut run = Run::new(client, spec, None);
    run.all().await?;
    Ok(run.outcome)
}

/// Makes the tenant match `spec`, changing only what differs, and returns what it changed.
///
/// # Errors
/// [`AdminError`] naming the step that failed; earlier steps stay applied, and running again continues from there.
pub async fn apply(
    client: &MgmtClient,
    spec: &TenantSpec,
    options: &ApplyOptions,
) -> Result<Outcome, AdminError> {
    spec.validate()?;
    let mut run = Run::new(client, spec, Some(options));
    run.all().await?;
    if let Some(path) = &options.secrets_out {
        run.write_secret(path).await?;
        run.outcome.secrets_written = Some(path.clone());
    }
    Ok(run.outcome)
}

macro_rules! op {
    ($name:literal, $idempotent:literal) => {{
        static OP: OtherOperation = OtherOperation {
            name: $name,
            idempotent: $idempotent,
        };
        Operation::Other(&OP)
    }};
}

/// Percent-encodes a path segment or query value.
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Calls the Management API, naming `step` in any error.
pub(crate) async fn call(
    client: &MgmtClient,
    step: &str,
    op: Operation,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, AdminError> {
    client
        .request_json(op, method, path, body)
        .await
        .map_err(|source: MgmtError| AdminError::Auth0 {
            step: step.to_owned(),
            source: Box::new(source),
        })
}

/// Reads every page of a list (`include_totals=true`); accepts a bare array too.
pub(crate) async fn list_all(
    client: &MgmtClient,
    step: &str,
    path: &str,
    key: &str,
) -> Result<Vec<Value>, AdminError> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    for page in 0..MAX_PAGES {
        let url = format!("{path}{sep}include_totals=true&per_page={PER_PAGE}&page={page}");
        let answer = call(client, step, op!("list", true), Method::GET, &url, None).await?;
        let (batch, total) = match answer {
            Value::Array(batch) => (batch, None),
            Value::Object(mut map) => {
                let total = map.get("total").and_then(Value::as_u64);
                match map.remove(key) {
                    Some(Value::Array(batch)) => (batch, total),
                    _ => (Vec::new(), Some(0)),
                }
            }
            _ => (Vec::new(), Some(0)),
        };
        let count = batch.len();
        items.extend(batch);
        let done = match total {
            Some(total) => items.len() as u64 >= total,
            None => count < PER_PAGE,
        };
        if done || count == 0 {
            return Ok(items);
        }
    }
    Err(AdminError::Tenant {
        step: step.to_owned(),
        message: "too many pages".to_owned(),
    })
}

/// The one object in `items` whose `field` equals `value`.
pub(crate) fn find_unique<'a>(
    items: &'a [Value],
    field: &str,
    value: &str,
    step: &str,
) -> Result<Option<&'a Value>, AdminError> {
    let mut found = items.iter().filter(|i| i[field] == value);
    let first = found.next();
    if first.is_some() && found.next().is_some() {
        return Err(AdminError::Tenant {
            step: step.to_owned(),
            message: format!(
                "more than one object has {field} = {value:?}; rename or remove the extra ones"
            ),
        });
    }
    Ok(first)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn set(values: &[String]) -> BTreeSet<&str> {
    values.iter().map(String::as_str).collect()
}

fn quoted(items: &BTreeSet<&str>) -> String {
    items.iter().copied().collect::<Vec<_>>().join(" ")
}

/// The Action code for these settings: the source plus a stamp of the secret values, so a change of the
/// settings (whose values Auth0 never returns) shows up as a code change.
fn action_code(secrets: &[(&str, String)]) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in secrets {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    let stamp: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{ACTION_CODE}\n// companion-admin settings: {stamp}\n")
}

/// Placeholder id of an object a dry run would create.
const NEW_ID: &str = "(new)";

struct Run<'a> {
    client: &'a MgmtClient,
    spec: &'a TenantSpec,
    /// `None` for a dry run.
    apply: Option<&'a ApplyOptions>,
    outcome: Outcome,
    proxy_secret: Option<SecretString>,
}

impl<'a> Run<'a> {
    fn new(client: &'a MgmtClient, spec: &'a TenantSpec, apply: Option<&'a ApplyOptions>) -> Self {
        Self {
            client,
            spec,
            apply,
            outcome: Outcome::default(),
            proxy_secret: None,
        }
    }

    fn change(&mut self, kind: ChangeKind, subject: String, details: Vec<String>) {
        self.outcome.changes.push(Change {
            kind,
            subject,
            details,
        });
    }

    async fn call(
        &self,
        step: &str,
        op: Operation,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, AdminError> {
        call(self.client, step, op, method, path, body).await
    }

    async fn all(&mut self) -> Result<(), AdminError> {
        self.api().await?;
        let desktop = self.desktop_client().await?;
        let proxy = self.proxy_client().await?;
        self.outcome.desktop_client_id = (desktop != NEW_ID).then(|| desktop.clone());
        self.outcome.proxy_client_id = (proxy != NEW_ID).then(|| proxy.clone());
        self.grants(&desktop, &proxy).await?;
        self.factors().await?;
        self.policies().await?;
        let action = self.action(&desktop).await?;
        self.binding(&action).await?;
        Ok(())
    }

    async fn api(&mut self) -> Result<(), AdminError> {
        let spec = &self.spec.api;
        let step = "read APIs";
        let apis = list_all(self.client, step, "/resource-servers", "resource_servers").await?;
        let existing = find_unique(&apis, "identifier", &spec.identifier, step)?.cloned();
        let subject = format!("API {:?}", spec.identifier);
        match existing {
            None => {
                self.change(
                    ChangeKind::Create,
                    subject,
                    vec![
                        format!("name: {:?}", spec.name),
                        format!("token_lifetime: {}", spec.token_lifetime),
                        "allow_offline_access: true".to_owned(),
                    ],
                );
                if self.apply.is_some() {
                    let body = json!({
                        "identifier": spec.identifier,
                        "name": spec.name,
                        "signing_alg": "RS256",
                        "token_lifetime": spec.token_lifetime,
                        "allow_offline_access": true,
                        "skip_consent_for_verifiable_first_party_clients": true
                    });
                    self.call(
                        "create API",
                        op!("create API", false),
                        Method::POST,
                        "/resource-servers",
                        Some(&body),
                    )
                    .await?;
                }
            }
            Some(api) => {
                let mut body = serde_json::Map::new();
                let mut details = Vec::new();
                if api["name"] != spec.name.as_str() {
                    details.push(format!("name: {} -> {:?}", api["name"], spec.name));
                    body.insert("name".to_owned(), json!(spec.name));
                }
                if api["token_lifetime"].as_u64() != Some(spec.token_lifetime) {
                    details.push(format!(
                        "token_lifetime: {} -> {}",
                        api["token_lifetime"], spec.token_lifetime
                    ));
                    body.insert("token_lifetime".to_owned(), json!(spec.token_lifetime));
                }
                if api["allow_offline_access"] != true {
                    details.push(format!(
                        "allow_offline_access: {} -> true",
                        api["allow_offline_access"]
                    ));
                    body.insert("allow_offline_access".to_owned(), json!(true));
                }
                if !details.is_empty() {
                    self.change(ChangeKind::Update, subject, details);
                    if self.apply.is_some() {
                        let id = api["id"].as_str().unwrap_or_default();
                        let path = format!("/resource-servers/{}", encode(id));
                        self.call(
                            "update API",
                            op!("update API", true),
                            Method::PATCH,
                            &path,
                            Some(&Value::Object(body)),
                        )
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn clients(&self) -> Result<Vec<Value>, AdminError> {
        list_all(self.client, "read clients", "/clients", "clients").await
    }

    /// Creates or updates a client to match `desired` (compared field by field; `refresh_token` key by key).
    async fn ensure_client(
        &mut self,
        role: &str,
        name: &str,
        desired: Value,
    ) -> Result<String, AdminError> {
        let step = format!("read {role} client");
        let clients = self.clients().await?;
        let existing = find_unique(&clients, "name", name, &step)?.cloned();
        let subject = format!("{role} client {name:?}");
        let Value::Object(desired) = desired else {
            return Ok(NEW_ID.to_owned());
        };
        match existing {
            None => {
                let details = desired
                    .iter()
                    .filter(|(k, _)| *k != "name")
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                self.change(ChangeKind::Create, subject, details);
                if self.apply.is_none() {
                    return Ok(NEW_ID.to_owned());
                }
                let mut body = desired.clone();
                body.insert("name".to_owned(), json!(name));
                let step = format!("create {role} client");
                let created = self
                    .call(
                        &step,
                        op!("create client", false),
                        Method::POST,
                        "/clients",
                        Some(&Value::Object(body)),
                    )
                    .await?;
                let id = created["client_id"].as_str().unwrap_or_default().to_owned();
                if id.is_empty() {
                    return Err(AdminError::Tenant {
                        step,
                        message: "the created client has no client_id".to_owned(),
                    });
                }
                if role == "proxy"
                    && let Some(secret) = created["client_secret"].as_str()
                {
                    self.proxy_secret = Some(SecretString::from(secret.to_owned()));
                }
                Ok(id)
            }
            Some(client) => {
                let id = client["client_id"].as_str().unwrap_or_default().to_owned();
                let mut body = serde_json::Map::new();
                let mut details = Vec::new();
                for (key, want) in &desired {
                    let have = &client[key.as_str()];
                    let same = match key.as_str() {
                        "callbacks" | "grant_types" => set(&strings(have)) == set(&strings(want)),
                        "refresh_token" => want
                            .as_object()
                            .is_some_and(|w| w.iter().all(|(k, v)| have[k.as_str()] == *v)),
                        _ => have == want,
                    };
                    if !same {
                        details.push(format!("{key}: {have} -> {want}"));
                        body.insert(key.clone(), want.clone());
                    }
                }
                if !details.is_empty() {
                    self.change(ChangeKind::Update, subject, details);
                    if self.apply.is_some() {
                        let path = format!("/clients/{}", encode(&id));
                        let step = format!("update {role} client");
                        self.call(
                            &step,
                            op!("update client", true),
                            Method::PATCH,
                            &path,
                            Some(&Value::Object(body)),
                        )
                        .await?;
                    }
                }
                Ok(id)
            }
        }
    }

    async fn desktop_client(&mut self) -> Result<String, AdminError> {
        let spec = &self.spec.desktop;
        let desired = json!({
            "app_type": "native",
            "callbacks": self.spec.callbacks(),
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "oidc_conformant": true,
            "refresh_token": {
                "rotation_type": "rotating",
                "expiration_type": "expiring",
                "leeway": 0,
                "token_lifetime": spec.refresh_token_lifetime,
                "infinite_token_lifetime": false,
                "idle_token_lifetime": spec.refresh_token_idle_lifetime,
                "infinite_idle_token_lifetime": false
            }
        });
        let name = spec.name.clone();
        self.ensure_client("desktop", &name, desired).await
    }

    async fn proxy_client(&mut self) -> Result<String, AdminError> {
        let desired = json!({
            "app_type": "non_interactive",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_post",
            "oidc_conformant": true
        });
        let name = self.spec.proxy.name.clone();
        self.ensure_client("proxy", &name, desired).await
    }

    fn mgmt_audience(&self) -> String {
        format!("{}/api/v2/", self.client.tenant_url())
    }

    async fn grants(&mut self, desktop: &str, proxy: &str) -> Result<(), AdminError> {
        let audience = self.mgmt_audience();
        let want: Vec<String> = self.spec.proxy.scopes.clone();
        let want_set: BTreeSet<&str> = set(&want);
        // The desktop client is public: it holds no client grant at all.
        for (role, client_id) in [("desktop", desktop), ("proxy", proxy)] {
            if client_id == NEW_ID {
                continue;
            }
            let step = format!("read {role} client grants");
            let path = format!("/client-grants?client_id={}", encode(client_id));
            let grants = list_all(self.client, &step, &path, "client_grants").await?;
            for grant in grants.iter().filter(|g| g["client_id"] == client_id) {
                let id = grant["id"].as_str().unwrap_or_default().to_owned();
                let grant_audience = grant["audience"].as_str().unwrap_or_default();
                let have = strings(&grant["scope"]);
                if role == "proxy" && grant_audience == audience {
                    let have_set = set(&have);
                    if have_set == want_set {
                        continue;
                    }
                    let extra: BTreeSet<&str> = have_set.difference(&want_set).copied().collect();
                    let missing: BTreeSet<&str> = want_set.difference(&have_set).copied().collect();
                    if !extra.is_empty() {
                        self.outcome.drift.push(format!(
                            "proxy client grant on the Management API is wider than the spec: {}",
                            quoted(&extra)
                        ));
                    }
                    let mut details = Vec::new();
                    if !extra.is_empty() {
                        details.push(format!("remove scopes: {}", quoted(&extra)));
                    }
                    if !missing.is_empty() {
                        details.push(format!("add scopes: {}", quoted(&missing)));
                    }
                    self.change(
                        ChangeKind::Update,
                        format!("proxy client grant for {audience}"),
                        details,
                    );
                    if self.apply.is_some() {
                        let path = format!("/client-grants/{}", encode(&id));
                        let body = json!({ "scope": want });
                        self.call(
                            "narrow proxy client grant",
                            op!("update client grant", true),
                            Method::PATCH,
                            &path,
                            Some(&body),
                        )
                        .await?;
                    }
                } else {
                    self.outcome.drift.push(format!(
                        "{role} client has a grant the spec does not allow: {grant_audience} ({})",
                        have.join(" ")
                    ));
                    self.change(
                        ChangeKind::Delete,
                        format!("{role} client grant for {grant_audience}"),
                        Vec::new(),
                    );
                    if self.apply.is_some() {
                        let path = format!("/client-grants/{}", encode(&id));
                        let step = format!("delete {role} client grant");
                        self.call(
                            &step,
                            op!("delete client grant", true),
                            Method::DELETE,
                            &path,
                            None,
                        )
                        .await?;
                    }
                }
            }
        }
        let has_grant = if proxy == NEW_ID {
            false
        } else {
            let path = format!(
                "/client-grants?client_id={}&audience={}",
                encode(proxy),
                encode(&audience)
            );
            let grants = list_all(
                self.client,
                "read proxy client grants",
                &path,
                "client_grants",
            )
            .await?;
            grants
                .iter()
                .any(|g| g["client_id"] == proxy && g["audience"] == audience.as_str())
        };
        if !has_grant {
            self.change(
                ChangeKind::Create,
                format!("proxy client grant for {audience}"),
                vec![format!("scopes: {}", quoted(&want_set))],
            );
            if self.apply.is_some() {
                let body = json!({"client_id": proxy, "audience": audience, "scope": want});
                self.call(
                    "create proxy client grant",
                    op!("create client grant", false),
                    Method::POST,
                    "/client-grants",
                    Some(&body),
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn factors(&mut self) -> Result<(), AdminError> {
        let factors = self
            .call(
                "read MFA factors",
                op!("read factors", true),
                Method::GET,
                "/guardian/factors",
                None,
            )
            .await?;
        let factors = factors.as_array().cloned().unwrap_or_default();
        for name in &self.spec.mfa.factors {
            let enabled = factors
                .iter()
                .any(|f| f["name"] == name.as_str() && f["enabled"] == true);
            if enabled {
                continue;
            }
            self.change(
                ChangeKind::Update,
                format!("MFA factor {name}"),
                vec!["enabled: false -> true".to_owned()],
            );
            if self.apply.is_some() {
                let path = format!("/guardian/factors/{}", encode(name));
                let step = format!("enable MFA factor {name}");
                self.call(
                    &step,
                    op!("enable factor", true),
                    Method::PUT,
                    &path,
                    Some(&json!({"enabled": true})),
                )
                .await?;
            }
        }
        if self
            .spec
            .mfa
            .factors
            .iter()
            .any(|f| f == "webauthn-roaming")
        {
            let path = "/guardian/factors/webauthn-roaming/settings";
            let settings = self
                .call(
                    "read security key settings",
                    op!("read webauthn settings", true),
                    Method::GET,
                    path,
                    None,
                )
                .await?;
            let want = self.spec.mfa.user_verification.as_str();
            if settings["userVerification"] != want {
                self.change(
                    ChangeKind::Update,
                    "security key (webauthn-roaming) settings".to_owned(),
                    vec![format!(
                        "userVerification: {} -> {want:?}",
                        settings["userVerification"]
                    )],
                );
                if self.apply.is_some() {
                    self.call(
                        "set security key user verification",
                        op!("update webauthn settings", true),
                        Method::PUT,
                        path,
                        Some(&json!({"userVerification": want})),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn policies(&mut self) -> Result<(), AdminError> {
        let have = self
            .call(
                "read MFA policies",
                op!("read policies", true),
                Method::GET,
                "/guardian/policies",
                None,
            )
            .await?;
        let want = self.spec.policies();
        if strings(&have) != want {
            self.change(
                ChangeKind::Update,
                "MFA policy".to_owned(),
                vec![format!("{have} -> {}", json!(want))],
            );
            if self.apply.is_some() {
                self.call(
                    "set MFA policy",
                    op!("update policies", true),
                    Method::PUT,
                    "/guardian/policies",
                    Some(&json!(want)),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Creates or updates the Action, waits for its build and deploys it; returns its id.
    async fn action(&mut self, desktop: &str) -> Result<String, AdminError> {
        let spec = &self.spec.action;
        let secrets = vec![
            ("CLAIM_NAMESPACE", spec.namespace.clone()),
            ("CLIENT_IDS", desktop.to_owned()),
            ("AUDIENCE", self.spec.api.identifier.clone()),
        ];
        let code = action_code(&secrets);
        let secrets_json: Vec<Value> = secrets
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        let path = format!("/actions/actions?actionName={}", encode(&spec.name));
        let found = self
            .call(
                "read actions",
                op!("list actions", true),
                Method::GET,
                &path,
                None,
            )
            .await?;
        let found = found["actions"].as_array().cloned().unwrap_or_default();
        let existing = find_unique(&found, "name", &spec.name, "read actions")?.cloned();
        let subject = format!("post-login Action {:?}", spec.name);
        let name = spec.name.clone();
        let (id, needs_deploy) = match existing {
            None => {
                self.change(
                    ChangeKind::Create,
                    subject.clone(),
                    vec![
                        format!("runtime: {RUNTIME}, trigger: post-login v3"),
                        format!(
                            "secrets: {}",
                            secrets
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ],
                );
                if self.apply.is_none() {
                    (NEW_ID.to_owned(), true)
                } else {
                    let body = json!({
                        "name": name,
                        "supported_triggers": [{"id": "post-login", "version": "v3"}],
                        "code": code,
                        "runtime": RUNTIME,
                        "dependencies": [],
                        "secrets": secrets_json,
                    });
                    let created = self
                        .call(
                            "create Action",
                            op!("create action", false),
                            Method::POST,
                            "/actions/actions",
                            Some(&body),
                        )
                        .await?;
                    (created["id"].as_str().unwrap_or_default().to_owned(), true)
                }
            }
            Some(action) => {
                let id = action["id"].as_str().unwrap_or_default().to_owned();
                let mut details = Vec::new();
                if action["code"] != code.as_str() {
                    details.push("code or settings changed".to_owned());
                }
                if action["runtime"] != RUNTIME {
                    details.push(format!("runtime: {} -> {RUNTIME}", action["runtime"]));
                }
                let have_secrets: BTreeSet<String> = action["secrets"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s["name"].as_str())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                let want_secrets: BTreeSet<String> =
                    secrets.iter().map(|(n, _)| (*n).to_owned()).collect();
                if have_secrets != want_secrets {
                    details.push("secrets changed".to_owned());
                }
                if details.is_empty() {
                    let deployed = action["all_changes_deployed"] == true
                        && action["deployed_version"].is_object();
                    (id, !deployed)
                } else {
                    self.change(ChangeKind::Update, subject.clone(), details);
                    if self.apply.is_some() {
                        let body =
                            json!({"code": code, "runtime": RUNTIME, "secrets": secrets_json});
                        let path = format!("/actions/actions/{}", encode(&id));
                        self.call(
                            "update Action",
                            op!("update action", true),
                            Method::PATCH,
                            &path,
                            Some(&body),
                        )
                        .await?;
                    }
                    (id, true)
                }
            }
        };
        if needs_deploy {
            self.change(ChangeKind::Deploy, subject, Vec::new());
            if let Some(options) = self.apply {
                self.wait_built(&id, options).await?;
                let path = format!("/actions/actions/{}/deploy", encode(&id));
                self.call(
                    "deploy Action",
                    op!("deploy action", false),
                    Method::POST,
                    &path,
                    None,
                )
                .await?;
            }
        }
        Ok(id)
    }

    async fn wait_built(&self, id: &str, options: &ApplyOptions) -> Result<(), AdminError> {
        let step = "wait for the Action build";
        let path = format!("/actions/actions/{}", encode(id));
        let polls =
            (options.build_timeout.as_millis() / options.build_poll.as_millis().max(1)).max(1);
        let mut last = Value::Null;
        for _ in 0..=polls {
            let action = self
                .call(step, op!("read action", true), Method::GET, &path, None)
                .await?;
            match action["status"].as_str() {
                Some("built") => return Ok(()),
                Some("failed") => {
                    return Err(AdminError::Tenant {
                        step: step.to_owned(),
                        message: "the Action build failed; see the Action in the dashboard"
                            .to_owned(),
                    });
                }
                _ => last = action["status"].clone(),
            }
            tokio::time::sleep(options.build_poll).await;
        }
        Err(AdminError::Tenant {
            step: step.to_owned(),
            message: format!(
                "not built after {:?} (status {last})",
                options.build_timeout
            ),
        })
    }

    /// Binds the Action to post-login after the existing bindings, keeping them all (read, merge, write).
    async fn binding(&mut self, action_id: &str) -> Result<(), AdminError> {
        let path = "/actions/triggers/post-login/bindings";
        let current = self
            .call(
                "read post-login bindings",
                op!("read bindings", true),
                Method::GET,
                path,
                None,
            )
            .await?;
        let bindings = current["bindings"].as_array().cloned().unwrap_or_default();
        if bindings.iter().any(|b| b["action"]["id"] == action_id) {
            return Ok(());
        }
        let kept: Vec<String> = bindings
            .iter()
            .map(|b| b["display_name"].as_str().unwrap_or_default().to_owned())
            .collect();
        let mut details = vec![format!("after {} existing binding(s)", kept.len())];
        if !kept.is_empty() {
            details.push(format!("kept: {}", kept.join(", ")));
        }
        self.change(
            ChangeKind::Update,
            "post-login trigger bindings".to_owned(),
            details,
        );
        if self.apply.is_some() {
            let mut refs: Vec<Value> = bindings
                .iter()
                .map(|b| {
                    json!({
                        "ref": {"type": "action_id", "value": b["action"]["id"]},
                        "display_name": b["display_name"]
                    })
                })
                .collect();
            refs.push(json!({
                "ref": {"type": "action_id", "value": action_id},
                "display_name": self.spec.action.name
            }));
            self.call(
                "bind the Action to post-login",
                op!("update bindings", true),
                Method::PATCH,
                path,
                Some(&json!({ "bindings": refs })),
            )
            .await?;
        }
        Ok(())
    }

    /// Writes the proxy client's secret (from its creation, else read with `read:client_keys`) to `path`, 0600.
    async fn write_secret(&self, path: &PathBuf) -> Result<(), AdminError> {
        let step = "write the proxy client secret";
        let secret = match &self.proxy_secret {
            Some(secret) => secret.clone(),
            None => {
                let id = self.outcome.proxy_client_id.clone().unwrap_or_default();
                let client = self
                    .call(
                        step,
                        op!("read client", true),
                        Method::GET,
                        &format!("/clients/{}", encode(&id)),
                        None,
                    )
                    .await?;
                match client["client_secret"].as_str() {
                    Some(secret) => SecretString::from(secret.to_owned()),
                    None => {
                        return Err(AdminError::Tenant {
                            step: step.to_owned(),
                            message: "the secret is not readable (the admin client lacks read:client_keys)".to_owned(),
                        });
                    }
                }
            }
        };
        write_private(path, &format!("{}\n", secret.expose_secret()))
    }
}

/// Writes `text` to `path`, readable by the owner only (0600 on Unix).
pub(crate) fn write_private(path: &PathBuf, text: &str) -> Result<(), AdminError> {
    use std::io::Write as _;
    let error = |source| AdminError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(error)?;
    }
    file.write_all(text.as_bytes()).map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_unreserved_characters_only() {
        assert_eq!(encode("a b/c|d"), "a%20b%2Fc%7Cd");
        assert_eq!(encode("https://x/api/v2/"), "https%3A%2F%2Fx%2Fapi%2Fv2%2F");
    }

    #[test]
    fn the_action_code_changes_with_its_settings() {
        let a = action_code(&[("CLIENT_IDS", "a".to_owned())]);
        let b = action_code(&[("CLIENT_IDS", "b".to_owned())]);
        assert_ne!(a, b);
        assert!(a.starts_with(ACTION_CODE));
        assert!(!a.contains("CLIENT_IDS\u{0}a"), "values only as a digest");
    }

    #[test]
    fn changes_print_readably() {
        let change = Change {
            kind: ChangeKind::Update,
            subject: "MFA policy".to_owned(),
            details: vec!["[] -> [\"all-applications\"]".to_owned()],
        };
        assert_eq!(
            change.to_string(),
            "~ update MFA policy\n    [] -> [\"all-applications\"]"
        );
        assert!(Outcome::default().to_string().contains("No changes"));
    }
}
