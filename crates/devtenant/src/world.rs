//! The seeded world: tenant settings, APIs, clients, grants and users, read from a TOML file or the built-in default.
//!
//! The built-in default (`world/default.toml`) holds fixed, documented demo values that the demo, the docs,
//! scripts and tests rely on. Its secrets are published demo values for a local tenant, never real ones.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The built-in demo world's TOML text.
pub const DEFAULT_WORLD_TOML: &str = include_str!("../world/default.toml");

/// Fixed values of the built-in demo world, for the demo, scripts and tests.
pub mod demo {
    /// Client id of the public desktop client.
    pub const DESKTOP_CLIENT_ID: &str = "companion-desktop";
    /// Client id of the proxy's machine-to-machine client.
    pub const PROXY_CLIENT_ID: &str = "companion-proxy";
    /// The proxy client's secret: a published demo value for a local tenant.
    pub const PROXY_CLIENT_SECRET: &str = "demo-proxy-secret";
    /// The proxy API's identifier.
    pub const API_AUDIENCE: &str = "https://passkey-companion/api";
    /// The demo users' password: a published demo value for a local tenant.
    pub const PASSWORD: &str = "Passkeys-Demo-1";
    /// Bob: password only.
    pub const BOB_EMAIL: &str = "bob@example.com";
    /// Bob's user id.
    pub const BOB_USER_ID: &str = "auth0|6b0b00000000000000000002";
    /// Alice: TOTP, a security key, a platform authenticator and a recovery code.
    pub const ALICE_EMAIL: &str = "alice@example.com";
    /// Alice's user id.
    pub const ALICE_USER_ID: &str = "auth0|6a11ce000000000000000001";
    /// Alice's TOTP secret (base32).
    pub const ALICE_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXP";
    /// Alice's recovery code.
    pub const ALICE_RECOVERY_CODE: &str = "DEMO0ALICE0RECOVERY00001";
    /// The first registered loopback callback of the desktop client.
    pub const FIRST_CALLBACK: &str = "http://127.0.0.1:53180/callback";
}

/// A whole seeded world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// Tenant-wide settings.
    #[serde(default)]
    pub tenant: TenantSettings,
    /// Custom APIs (resource servers).
    #[serde(default)]
    pub apis: Vec<ApiSeed>,
    /// Applications.
    #[serde(default)]
    pub clients: Vec<ClientSeed>,
    /// Client grants (client-credentials permissions).
    #[serde(default)]
    pub client_grants: Vec<ClientGrantSeed>,
    /// Users and their methods.
    #[serde(default)]
    pub users: Vec<UserSeed>,
}

/// Tenant-wide MFA settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Guardian policies: empty, or `all-applications`.
    #[serde(default)]
    pub mfa_policies: Vec<String>,
    /// Guardian factor name → enabled.
    #[serde(default)]
    pub factors: BTreeMap<String, bool>,
}

/// A custom API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSeed {
    /// The API identifier, used as `audience`.
    pub identifier: String,
    /// Display name.
    pub name: String,
    /// Permissions the API defines.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Access token lifetime in seconds.
    #[serde(default = "default_token_lifetime")]
    pub token_lifetime: u64,
    /// Whether refresh tokens may be issued for it.
    #[serde(default)]
    pub allow_offline_access: bool,
}

fn default_token_lifetime() -> u64 {
    86_400
}

/// An application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSeed {
    /// The client id.
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// `native`, `spa`, `regular_web` or `non_interactive`.
    pub app_type: String,
    /// Allowed grant types.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Exact allowed callback URLs.
    #[serde(default)]
    pub callbacks: Vec<String>,
    /// Exact allowed logout return URLs.
    #[serde(default)]
    pub allowed_logout_urls: Vec<String>,
    /// Secret of a confidential client (demo values only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// A client grant: which scopes a client may get for an audience through client credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientGrantSeed {
    /// The client.
    pub client_id: String,
    /// The audience; `mgmt` stands for this tenant's Management API.
    pub audience: String,
    /// Granted scopes.
    #[serde(default)]
    pub scope: Vec<String>,
}

/// A user and their enrolled methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSeed {
    /// `auth0|...`.
    pub user_id: String,
    /// Email, also the login name.
    pub email: String,
    /// Full name.
    pub name: String,
    /// Password (demo values only; hashed when loaded).
    pub password: String,
    /// Enrolled methods.
    #[serde(default)]
    pub methods: Vec<MethodSeed>,
}

/// One seeded authentication method: Auth0's fields plus the secret the tenant needs to check it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodSeed {
    /// `<type>|dev_<16 chars>`.
    pub id: String,
    /// Management API type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Human label.
    #[serde(default)]
    pub name: Option<String>,
    /// Creation time (Auth0 format).
    pub created_at: String,
    /// Last use.
    #[serde(default)]
    pub last_auth_at: Option<String>,
    /// Authenticator model.
    #[serde(default)]
    pub aaguid: Option<String>,
    /// WebAuthn credential id.
    #[serde(default)]
    pub key_id: Option<String>,
    /// WebAuthn public key.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Browser at creation.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Phone number (phone methods).
    #[serde(default)]
    pub phone_number: Option<String>,
    /// Email (email methods).
    #[serde(default)]
    pub email: Option<String>,
    /// TOTP secret, base32 (totp methods).
    #[serde(default)]
    pub totp_secret: Option<String>,
    /// Recovery code (recovery-code methods).
    #[serde(default)]
    pub recovery_code: Option<String>,
}

/// Errors while loading a world.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorldError {
    /// The file could not be read.
    #[error("cannot read world file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid world.
    #[error("invalid world file {path}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: toml::de::Error,
    },
}

impl World {
    /// The built-in demo world.
    ///
    /// # Panics
    /// Never: the built-in world is checked by a unit test.
    pub fn demo() -> Self {
        #[allow(clippy::expect_used)]
        // The embedded file is fixed at compile time and parsed by a unit test.
        toml::from_str(DEFAULT_WORLD_TOML).expect("the built-in world parses")
    }

    /// Reads a world from a TOML file.
    ///
    /// # Errors
    /// [`WorldError`] naming the file when it cannot be read or parsed.
    pub fn from_file(path: &Path) -> Result<Self, WorldError> {
        let text = std::fs::read_to_string(path).map_err(|source| WorldError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| WorldError::Parse {
            path: path.display().to_string(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_world_has_the_documented_values() {
        let world = World::demo();
        let desktop = world
            .clients
            .iter()
            .find(|c| c.client_id == demo::DESKTOP_CLIENT_ID)
            .expect("desktop client");
        assert_eq!(
            desktop.callbacks.len(),
            10,
            "ports 53180..=53189 are registered"
        );
        assert_eq!(desktop.callbacks[0], demo::FIRST_CALLBACK);
        assert!(
            desktop.client_secret.is_none(),
            "the desktop client is public"
        );
        let proxy = world
            .clients
            .iter()
            .find(|c| c.client_id == demo::PROXY_CLIENT_ID)
            .expect("proxy client");
        assert_eq!(
            proxy.client_secret.as_deref(),
            Some(demo::PROXY_CLIENT_SECRET)
        );
        let grant = world
            .client_grants
            .iter()
            .find(|g| g.client_id == demo::PROXY_CLIENT_ID)
            .expect("grant");
        assert_eq!(
            grant.scope,
            companion_protocol::claims::PROXY_MGMT_SCOPES,
            "exactly the §12 scopes"
        );
        let alice = world
            .users
            .iter()
            .find(|u| u.email == demo::ALICE_EMAIL)
            .expect("alice");
        assert_eq!(alice.user_id, demo::ALICE_USER_ID);
        let kinds: Vec<&str> = alice.methods.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "totp",
                "webauthn-roaming",
                "webauthn-platform",
                "recovery-code"
            ]
        );
        assert_eq!(
            alice.methods[0].totp_secret.as_deref(),
            Some(demo::ALICE_TOTP_SECRET)
        );
        let bob = world
            .users
            .iter()
            .find(|u| u.email == demo::BOB_EMAIL)
            .expect("bob");
        assert!(bob.methods.is_empty(), "bob has a password only");
        assert!(world.users.iter().all(|u| u.password == demo::PASSWORD));
    }
}
