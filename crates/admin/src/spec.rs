//! The tenant specification IT reviews: `tenant.toml` (see the sample `crates/admin/tenant.toml`).

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

/// Scopes the proxy's client may ever hold on the Management API (auth0-reference.md §12). A spec asking for more
/// is refused: the tool never widens the proxy's grant beyond this set.
pub const ALLOWED_PROXY_SCOPES: [&str; 5] = [
    "read:authentication_methods",
    "update:authentication_methods",
    "delete:authentication_methods",
    "create:guardian_enrollment_tickets",
    "read:users",
];

/// Guardian factor names (`PUT /guardian/factors/{name}`).
pub const FACTOR_NAMES: [&str; 8] = [
    "push-notification",
    "sms",
    "email",
    "duo",
    "otp",
    "webauthn-roaming",
    "webauthn-platform",
    "recovery-code",
];

/// The whole specification.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// The proxy's API (resource server).
    pub api: ApiSpec,
    /// The desktop app's public client.
    pub desktop: DesktopSpec,
    /// The proxy's machine-to-machine client and deployment.
    pub proxy: ProxySpec,
    /// Factors and policies.
    #[serde(default)]
    pub mfa: MfaSpec,
    /// The post-login Action.
    #[serde(default)]
    pub action: ActionSpec,
}

/// The proxy's API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    /// The identifier (`audience`), e.g. `https://passkey-companion/api`.
    pub identifier: String,
    /// Display name.
    pub name: String,
    /// Access-token lifetime in seconds [default: 3600].
    #[serde(default = "default_token_lifetime")]
    pub token_lifetime: u64,
}

/// The desktop client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesktopSpec {
    /// Display name; the client is found by this exact name.
    pub name: String,
    /// Loopback callback ports, each registered as `http://127.0.0.1:<port>/callback`.
    pub callback_ports: Vec<u16>,
    /// Absolute refresh-token lifetime in seconds (rotation is always on) [default: 30 days].
    #[serde(default = "default_refresh_lifetime")]
    pub refresh_token_lifetime: u64,
    /// Refresh-token idle lifetime in seconds [default: 15 days].
    #[serde(default = "default_refresh_idle_lifetime")]
    pub refresh_token_idle_lifetime: u64,
    /// What users may enroll, for the desktop config [default: both WebAuthn kinds].
    #[serde(default = "default_enrollment_types")]
    pub enrollment_types: Vec<String>,
    /// Where users get help, for the desktop config.
    #[serde(default)]
    pub support_url: Option<String>,
}

/// The proxy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySpec {
    /// Display name of its M2M client; the client is found by this exact name.
    pub name: String,
    /// Its Management API scopes, exactly [default: the four of design.md]; at most [`ALLOWED_PROXY_SCOPES`].
    #[serde(default = "default_proxy_scopes")]
    pub scopes: Vec<String>,
    /// The URL desktops reach the proxy at (desktop config `proxy_url`).
    pub url: String,
    /// The proxy's listen address (proxy config `listen`) [default: 127.0.0.1:8787].
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Step-up window in seconds (proxy config `step_up_max_age`) [default: 300].
    #[serde(default = "default_step_up")]
    pub step_up_max_age: u64,
    /// Where the proxy reads its client secret (proxy config `mgmt_client_secret_file`).
    #[serde(default = "default_secret_file")]
    pub secret_file: String,
}

/// Factors and policies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaSpec {
    /// Factors to enable (others are left as they are).
    #[serde(default = "default_factors")]
    pub factors: Vec<String>,
    /// Security keys' user verification: `discouraged`, `preferred` or `required`.
    #[serde(default = "default_user_verification")]
    pub user_verification: String,
    /// `never` (MFA only when the Action asks, i.e. step-up) or `all-applications`.
    #[serde(default = "default_policy")]
    pub policy: String,
}

impl Default for MfaSpec {
    fn default() -> Self {
        Self {
            factors: default_factors(),
            user_verification: default_user_verification(),
            policy: default_policy(),
        }
    }
}

/// The post-login Action.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// The Action's unique name.
    #[serde(default = "default_action_name")]
    pub name: String,
    /// Claim namespace (secret `CLAIM_NAMESPACE`), ending in `/`.
    #[serde(default = "default_namespace")]
    pub namespace: String,
}

impl Default for ActionSpec {
    fn default() -> Self {
        Self {
            name: default_action_name(),
            namespace: default_namespace(),
        }
    }
}

fn default_token_lifetime() -> u64 {
    3600
}
fn default_refresh_lifetime() -> u64 {
    2_592_000
}
fn default_refresh_idle_lifetime() -> u64 {
    1_296_000
}
fn default_enrollment_types() -> Vec<String> {
    vec![
        "webauthn-platform".to_owned(),
        "webauthn-roaming".to_owned(),
    ]
}
fn default_proxy_scopes() -> Vec<String> {
    companion_protocol::claims::PROXY_MGMT_SCOPES
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}
fn default_listen() -> String {
    "127.0.0.1:8787".to_owned()
}
fn default_step_up() -> u64 {
    300
}
fn default_secret_file() -> String {
    "/etc/companion-proxy/client-secret".to_owned()
}
fn default_factors() -> Vec<String> {
    [
        "webauthn-roaming",
        "webauthn-platform",
        "otp",
        "recovery-code",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}
fn default_user_verification() -> String {
    "required".to_owned()
}
fn default_policy() -> String {
    "never".to_owned()
}
fn default_action_name() -> String {
    "passkey-companion-post-login".to_owned()
}
fn default_namespace() -> String {
    "https://passkey-companion/".to_owned()
}

/// Why a specification is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The file cannot be read.
    #[error("cannot read the spec {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for a spec.
    #[error("invalid spec: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is not allowed.
    #[error("invalid spec: {0}")]
    Invalid(String),
}

impl TenantSpec {
    /// Parses and checks a spec.
    ///
    /// # Errors
    /// [`SpecError`] naming the problem.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let spec: Self = toml::from_str(text)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Reads, parses and checks a spec file.
    ///
    /// # Errors
    /// [`SpecError`] naming the file or the problem.
    pub fn from_file(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`SpecError::Invalid`] naming the first problem.
    pub fn validate(&self) -> Result<(), SpecError> {
        let invalid = |m: String| Err(SpecError::Invalid(m));
        if self.api.identifier.trim().is_empty() {
            return invalid("api.identifier is empty".to_owned());
        }
        for (what, name) in [
            ("api.name", &self.api.name),
            ("desktop.name", &self.desktop.name),
            ("proxy.name", &self.proxy.name),
            ("action.name", &self.action.name),
        ] {
            if name.trim().is_empty() {
                return invalid(format!("{what} is empty"));
            }
        }
        if self.desktop.name == self.proxy.name {
            return invalid("desktop.name and proxy.name must differ".to_owned());
        }
        if self.desktop.callback_ports.is_empty() {
            return invalid("desktop.callback_ports is empty".to_owned());
        }
        let ports: BTreeSet<u16> = self.desktop.callback_ports.iter().copied().collect();
        if ports.len() != self.desktop.callback_ports.len() || ports.contains(&0) {
            return invalid("desktop.callback_ports must be distinct and non-zero".to_owned());
        }
        for t in &self.desktop.enrollment_types {
            if t != "webauthn-platform" && t != "webauthn-roaming" {
                return invalid(format!("desktop.enrollment_types: unknown type {t}"));
            }
        }
        if let Some(scope) = self
            .proxy
            .scopes
            .iter()
            .find(|s| !ALLOWED_PROXY_SCOPES.contains(&s.as_str()))
        {
            return invalid(format!(
                "proxy.scopes: {scope} is beyond what the proxy may hold ({})",
                ALLOWED_PROXY_SCOPES.join(", ")
            ));
        }
        if self.proxy.url.trim().is_empty() {
            return invalid("proxy.url is empty".to_owned());
        }
        if let Some(f) = self
            .mfa
            .factors
            .iter()
            .find(|f| !FACTOR_NAMES.contains(&f.as_str()))
        {
            return invalid(format!("mfa.factors: unknown factor {f}"));
        }
        if !["discouraged", "preferred", "required"].contains(&self.mfa.user_verification.as_str())
        {
            return invalid(format!(
                "mfa.user_verification: {} is not discouraged, preferred or required",
                self.mfa.user_verification
            ));
        }
        if self.mfa.policy != "never" && self.mfa.policy != "all-applications" {
            return invalid(format!(
                "mfa.policy: {} is not never or all-applications",
                self.mfa.policy
            ));
        }
        if !self.action.namespace.ends_with('/') || self.action.namespace.len() < 2 {
            return invalid("action.namespace must end with /".to_owned());
        }
        Ok(())
    }

    /// The desktop client's callback URLs.
    pub fn callbacks(&self) -> Vec<String> {
        self.desktop
            .callback_ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}/callback"))
            .collect()
    }

    /// The Guardian policies the spec asks for.
    pub fn policies(&self) -> Vec<String> {
        if self.mfa.policy == "all-applications" {
            vec!["all-applications".to_owned()]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../tenant.toml");

    #[test]
    fn the_sample_spec_is_valid() {
        let spec = TenantSpec::parse(SAMPLE).expect("the sample parses");
        assert_eq!(spec.callbacks()[0], "http://127.0.0.1:53180/callback");
        assert!(spec.policies().is_empty());
    }

    #[test]
    fn scopes_beyond_the_allowed_set_are_refused() {
        let text = SAMPLE.replace(
            "\"create:guardian_enrollment_tickets\",",
            "\"create:guardian_enrollment_tickets\", \"delete:users\",",
        );
        assert_ne!(text, SAMPLE, "the sample lists the scopes");
        let error = TenantSpec::parse(&text).expect_err("delete:users is refused");
        assert!(error.to_string().contains("delete:users"), "{error}");
    }

    #[test]
    fn bad_values_are_named() {
        let text = SAMPLE.replace(
            "user_verification = \"required\"",
            "user_verification = \"always\"",
        );
        let error = TenantSpec::parse(&text).expect_err("bad user verification");
        assert!(error.to_string().contains("user_verification"), "{error}");
        let text = SAMPLE.replace("[api]", "[api]\nbogus = 1");
        assert!(
            TenantSpec::parse(&text).is_err(),
            "unknown keys are refused"
        );
    }
}
