//! Shared helpers: a dev tenant with an admin M2M client, and a Management client for it.

#![allow(dead_code, unreachable_pub)] // Each test module uses a different subset.

use std::time::Duration;

use companion_admin::{ApplyOptions, TenantSpec};
use companion_devtenant::world::{ClientGrantSeed, ClientSeed, World};
use companion_devtenant::{RunningTenant, TenantOptions};
use companion_mgmt::{MgmtClient, MgmtConfig};
use secrecy::SecretString;

/// The admin client's id in test worlds.
pub const ADMIN_CLIENT_ID: &str = "companion-admin";
/// Its secret (a test value).
pub const ADMIN_SECRET: &str = "test-admin-secret";

/// The admin's scopes: auth0-reference.md §12 plus the API, client and grant scopes provisioning needs.
pub const ADMIN_SCOPES: [&str; 19] = [
    "read:guardian_factors",
    "update:guardian_factors",
    "read:mfa_policies",
    "update:mfa_policies",
    "create:actions",
    "read:actions",
    "update:actions",
    "update:clients",
    "read:clients",
    "read:client_keys",
    "create:clients",
    "read:resource_servers",
    "create:resource_servers",
    "update:resource_servers",
    "read:client_grants",
    "create:client_grants",
    "update:client_grants",
    "delete:client_grants",
    "update:tenant_settings",
];

/// The sample spec shipped with the crate.
pub fn sample_spec() -> TenantSpec {
    TenantSpec::parse(include_str!("../../tenant.toml")).expect("the sample spec parses")
}

/// A world holding only the admin client with `scopes`: an empty tenant otherwise.
pub fn empty_world(scopes: &[&str]) -> World {
    World {
        tenant: Default::default(),
        apis: Vec::new(),
        clients: vec![ClientSeed {
            client_id: ADMIN_CLIENT_ID.to_owned(),
            name: "companion-admin".to_owned(),
            app_type: "non_interactive".to_owned(),
            grant_types: vec!["client_credentials".to_owned()],
            callbacks: Vec::new(),
            allowed_logout_urls: Vec::new(),
            client_secret: Some(ADMIN_SECRET.to_owned()),
        }],
        client_grants: vec![ClientGrantSeed {
            client_id: ADMIN_CLIENT_ID.to_owned(),
            audience: "mgmt".to_owned(),
            scope: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }],
        users: Vec::new(),
    }
}

/// An empty tenant with the admin client.
pub async fn empty_tenant() -> RunningTenant {
    tenant_with(empty_world(&ADMIN_SCOPES)).await
}

/// A tenant seeded with `world`.
pub async fn tenant_with(world: World) -> RunningTenant {
    companion_devtenant::start(TenantOptions {
        world,
        key_bits: 1024,
        ..TenantOptions::for_test()
    })
    .await
    .expect("the tenant starts")
}

/// A Management client authenticating as `client_id`.
pub fn client_as(tenant: &RunningTenant, client_id: &str, secret: &str) -> MgmtClient {
    let url = url::Url::parse(tenant.base_url()).expect("base url");
    MgmtClient::new(MgmtConfig::new(
        url,
        client_id,
        SecretString::from(secret.to_owned()),
    ))
    .expect("a valid configuration")
}

/// The admin's Management client.
pub fn admin(tenant: &RunningTenant) -> MgmtClient {
    client_as(tenant, ADMIN_CLIENT_ID, ADMIN_SECRET)
}

/// Apply options with a fast build poll.
pub fn fast() -> ApplyOptions {
    ApplyOptions {
        build_poll: Duration::from_millis(5),
        build_timeout: Duration::from_secs(10),
        ..ApplyOptions::default()
    }
}

/// Management writes (anything but GET) in the tenant's call log.
pub fn writes(tenant: &RunningTenant) -> Vec<String> {
    tenant
        .state
        .faults
        .mgmt_calls()
        .into_iter()
        .filter(|c| c.method != "GET")
        .map(|c| format!("{} {} -> {}", c.method, c.path, c.status))
        .collect()
}
