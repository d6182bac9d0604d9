//! The tenant-configuration endpoints over real HTTP: resource servers, clients, client grants, Actions (build,
//! deploy) and trigger bindings, with scope checks, Auth0's shapes, and the seeded world visible through them.

use std::time::Duration;

use companion_devtenant::world::demo;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::mgmt::{call, error_body, mint, spawn, spawn_manual};

/// The configuration scopes (auth0-reference.md §12 plus the application and API scopes the spec names).
const CONFIG_SCOPES: [&str; 15] = [
    "read:resource_servers",
    "create:resource_servers",
    "update:resource_servers",
    "read:clients",
    "read:client_keys",
    "create:clients",
    "update:clients",
    "read:client_grants",
    "create:client_grants",
    "update:client_grants",
    "delete:client_grants",
    "read:actions",
    "create:actions",
    "update:actions",
    "read:guardian_factors",
];

async fn json_of(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "status of {}", response.url());
    response.json().await.expect("a JSON body")
}

#[tokio::test]
async fn seeded_apis_clients_and_grants_appear_with_ids() {
    let (tenant, http) = spawn().await;
    let token = mint(&tenant, &CONFIG_SCOPES);
    let apis = json_of(
        call(
            &http,
            &tenant,
            Method::GET,
            "/api/v2/resource-servers",
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let apis = apis
        .as_array()
        .expect("a bare array without include_totals");
    assert_eq!(
        apis[0]["is_system"], true,
        "the Management API is listed first"
    );
    assert_eq!(
        apis[0]["identifier"],
        format!("{}/api/v2/", tenant.base_url())
    );
    let api = apis
        .iter()
        .find(|a| a["identifier"] == demo::API_AUDIENCE)
        .expect("the seeded API");
    let id = api["id"].as_str().expect("an id");
    assert_eq!(id.len(), 24);
    assert_eq!(api["allow_offline_access"], true);
    let by_id = json_of(
        call(
            &http,
            &tenant,
            Method::GET,
            &format!("/api/v2/resource-servers/{id}"),
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(&by_id, api, "GET by id answers the listed object");

    let clients = json_of(
        call(
            &http,
            &tenant,
            Method::GET,
            "/api/v2/clients?include_totals=true&per_page=50&page=0",
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(clients["total"], 2);
    let list = clients["clients"].as_array().expect("clients");
    let desktop = list
        .iter()
        .find(|c| c["client_id"] == demo::DESKTOP_CLIENT_ID)
        .expect("desktop");
    assert_eq!(desktop["token_endpoint_auth_method"], "none");
    assert_eq!(desktop["callbacks"].as_array().map(Vec::len), Some(10));
    assert!(
        desktop.get("client_secret").is_none(),
        "public clients have no secret"
    );
    let proxy = list
        .iter()
        .find(|c| c["client_id"] == demo::PROXY_CLIENT_ID)
        .expect("proxy");
    assert_eq!(
        proxy["client_secret"],
        demo::PROXY_CLIENT_SECRET,
        "read:client_keys shows secrets"
    );
    let without_keys = mint(&tenant, &["read:clients"]);
    let proxy_again = json_of(
        call(
            &http,
            &tenant,
            Method::GET,
            &format!("/api/v2/clients/{}", demo::PROXY_CLIENT_ID),
            Some(&without_keys),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        proxy_again.get("client_secret").is_none(),
        "no secret without read:client_keys"
    );

    let grants = json_of(
        call(
            &http,
            &tenant,
            Method::GET,
            &format!("/api/v2/client-grants?client_id={}", demo::PROXY_CLIENT_ID),
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let grants = grants.as_array().expect("grants");
    assert_eq!(grants.len(), 1);
    assert_eq!(
        grants[0]["audience"],
        format!("{}/api/v2/", tenant.base_url()),
        "`mgmt` is served as the real audience"
    );
    assert!(
        grants[0]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("cgr_"))
    );
    let none = json_of(
        call(
            &http,
            &tenant,
            Method::GET,
            "/api/v2/client-grants?audience=https%3A%2F%2Fnope",
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(none, json!([]), "the audience filter applies");
    tenant.shutdown().await;
}

#[tokio::test]
async fn scopes_are_checked_per_endpoint() {
    let (tenant, http) = spawn().await;
    let token = mint(&tenant, &["read:clients"]);
    for (method, path, scope) in [
        (
            Method::GET,
            "/api/v2/resource-servers",
            "read:resource_servers",
        ),
        (Method::POST, "/api/v2/clients", "create:clients"),
        (Method::GET, "/api/v2/client-grants", "read:client_grants"),
        (Method::POST, "/api/v2/actions/actions", "create:actions"),
        (
            Method::GET,
            "/api/v2/actions/triggers/post-login/bindings",
            "read:actions",
        ),
        (
            Method::PATCH,
            "/api/v2/actions/triggers/post-login/bindings",
            "update:actions",
        ),
    ] {
        let body = error_body(
            call(
                &http,
                &tenant,
                method.clone(),
                path,
                Some(&token),
                Some(json!({})),
            )
            .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert!(
            body.message.contains(scope),
            "{method} {path}: {}",
            body.message
        );
    }
    tenant.shutdown().await;
}

#[tokio::test]
async fn creates_and_patches_apis_clients_and_grants() {
    let (tenant, http) = spawn().await;
    let token = mint(&tenant, &CONFIG_SCOPES);
    let api = json_of(
        call(&http, &tenant, Method::POST, "/api/v2/resource-servers", Some(&token), Some(json!({
            "identifier": "https://new/api", "name": "New", "scopes": [{"value": "read:x", "description": "Read x"}],
            "token_lifetime": 600
        }))).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        api["scopes"],
        json!([{"value": "read:x", "description": "Read x"}])
    );
    let again = call(
        &http,
        &tenant,
        Method::POST,
        "/api/v2/resource-servers",
        Some(&token),
        Some(json!({"identifier": "https://new/api"})),
    )
    .await;
    error_body(again, StatusCode::CONFLICT).await;
    let patched = json_of(
        call(
            &http,
            &tenant,
            Method::PATCH,
            &format!(
                "/api/v2/resource-servers/{}",
                api["id"].as_str().expect("id")
            ),
            Some(&token),
            Some(json!({"allow_offline_access": true})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(patched["allow_offline_access"], true);
    assert_eq!(patched["token_lifetime"], 600, "other fields are kept");

    let native = json_of(
        call(&http, &tenant, Method::POST, "/api/v2/clients", Some(&token), Some(json!({
            "name": "Native", "app_type": "native", "callbacks": ["http://127.0.0.1:1/callback"],
            "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"
        }))).await,
        StatusCode::CREATED,
    )
    .await;
    assert!(
        native.get("client_secret").is_none(),
        "no secret for a public client"
    );
    let m2m = json_of(
        call(
            &http,
            &tenant,
            Method::POST,
            "/api/v2/clients",
            Some(&token),
            Some(json!({
                "name": "M2M", "app_type": "non_interactive", "grant_types": ["client_credentials"]
            })),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let secret = m2m["client_secret"]
        .as_str()
        .expect("a confidential client gets a secret");
    assert!(secret.len() >= 32);
    let m2m_id = m2m["client_id"].as_str().expect("client id").to_owned();
    let bad = call(
        &http,
        &tenant,
        Method::POST,
        "/api/v2/clients",
        Some(&token),
        Some(json!({"name": "x", "app_type": "robot"})),
    )
    .await;
    assert_eq!(
        error_body(bad, StatusCode::BAD_REQUEST)
            .await
            .error_code
            .as_deref(),
        Some("invalid_body")
    );

    let native_id = native["client_id"].as_str().expect("id");
    let rotated = json_of(
        call(&http, &tenant, Method::PATCH, &format!("/api/v2/clients/{native_id}"), Some(&token), Some(json!({
            "refresh_token": {"rotation_type": "rotating", "expiration_type": "expiring", "token_lifetime": 3600}
        }))).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rotated["refresh_token"]["rotation_type"], "rotating");
    assert_eq!(rotated["refresh_token"]["token_lifetime"], 3600);
    assert_eq!(
        rotated["callbacks"],
        json!(["http://127.0.0.1:1/callback"]),
        "callbacks are kept"
    );

    let mgmt = format!("{}/api/v2/", tenant.base_url());
    let grant = json_of(
        call(
            &http,
            &tenant,
            Method::POST,
            "/api/v2/client-grants",
            Some(&token),
            Some(json!({
                "client_id": m2m_id, "audience": mgmt, "scope": ["read:authentication_methods"]
            })),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let duplicate = call(
        &http,
        &tenant,
        Method::POST,
        "/api/v2/client-grants",
        Some(&token),
        Some(json!({
            "client_id": m2m_id, "audience": mgmt, "scope": []
        })),
    )
    .await;
    error_body(duplicate, StatusCode::CONFLICT).await;
    let undefined = call(
        &http,
        &tenant,
        Method::POST,
        "/api/v2/client-grants",
        Some(&token),
        Some(json!({
            "client_id": m2m_id, "audience": "https://new/api", "scope": ["write:x"]
        })),
    )
    .await;
    error_body(undefined, StatusCode::BAD_REQUEST).await;
    let grant_path = format!(
        "/api/v2/client-grants/{}",
        grant["id"].as_str().expect("id")
    );
    let narrowed = json_of(
        call(&http, &tenant, Method::PATCH, &grant_path, Some(&token), Some(json!({"scope": ["read:authentication_methods", "create:guardian_enrollment_tickets"]}))).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        narrowed["scope"],
        json!([
            "read:authentication_methods",
            "create:guardian_enrollment_tickets"
        ])
    );

    // The new client can now get a Management token with exactly the granted scopes.
    let token_response: Value = http
        .post(tenant.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &m2m_id),
            ("client_secret", secret),
            ("audience", &mgmt),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("json");
    assert_eq!(
        token_response["scope"],
        "read:authentication_methods create:guardian_enrollment_tickets"
    );

    let deleted = call(
        &http,
        &tenant,
        Method::DELETE,
        &grant_path,
        Some(&token),
        None,
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = call(
        &http,
        &tenant,
        Method::DELETE,
        &grant_path,
        Some(&token),
        None,
    )
    .await;
    error_body(gone, StatusCode::NOT_FOUND).await;
    tenant.shutdown().await;
}

async fn build(
    http: &reqwest::Client,
    tenant: &companion_devtenant::RunningTenant,
    token: &str,
    id: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..3 {
        let action = json_of(
            call(
                http,
                tenant,
                Method::GET,
                &format!("/api/v2/actions/actions/{id}"),
                Some(token),
                None,
            )
            .await,
            StatusCode::OK,
        )
        .await;
        seen.push(action["status"].as_str().expect("status").to_owned());
    }
    seen
}

#[tokio::test]
async fn actions_build_deploy_and_bind_with_the_list_replaced() {
    let (tenant, http, clock) = spawn_manual(None).await;
    let token = mint(&tenant, &CONFIG_SCOPES);
    let created = json_of(
        call(
            &http,
            &tenant,
            Method::POST,
            "/api/v2/actions/actions",
            Some(&token),
            Some(json!({
                "name": "first", "supported_triggers": [{"id": "post-login", "version": "v3"}],
                "code": "exports.onExecutePostLogin = async () => {};", "runtime": "node22",
                "secrets": [{"name": "CLAIM_NAMESPACE", "value": "https://x/"}]
            })),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["status"], "pending");
    assert_eq!(created["secrets"][0]["name"], "CLAIM_NAMESPACE");
    assert!(
        created["secrets"][0].get("value").is_none(),
        "secret values are never served"
    );
    let id = created["id"].as_str().expect("id").to_owned();
    let early = call(
        &http,
        &tenant,
        Method::POST,
        &format!("/api/v2/actions/actions/{id}/deploy"),
        Some(&token),
        None,
    )
    .await;
    error_body(early, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        build(&http, &tenant, &token, &id).await,
        ["pending", "building", "built"]
    );
    let version = json_of(
        call(
            &http,
            &tenant,
            Method::POST,
            &format!("/api/v2/actions/actions/{id}/deploy"),
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(version["number"], 1);
    assert_eq!(version["deployed"], false, "as recorded");
    assert_eq!(version["status"], "built");

    // A code change restarts the build; time alone also finishes it.
    let patched = json_of(
        call(
            &http,
            &tenant,
            Method::PATCH,
            &format!("/api/v2/actions/actions/{id}"),
            Some(&token),
            Some(json!({"code": "// v2"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(patched["status"], "pending");
    assert_eq!(patched["all_changes_deployed"], false);
    assert_eq!(patched["deployed_version"]["number"], 1);
    clock.advance(Duration::from_secs(3));
    let later = json_of(
        call(
            &http,
            &tenant,
            Method::GET,
            &format!("/api/v2/actions/actions/{id}"),
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(later["status"], "built");

    let second = json_of(
        call(&http, &tenant, Method::POST, "/api/v2/actions/actions", Some(&token), Some(json!({
            "name": "second", "supported_triggers": [{"id": "post-login", "version": "v3"}], "code": ""
        }))).await,
        StatusCode::CREATED,
    )
    .await;
    let second_id = second["id"].as_str().expect("id").to_owned();
    let undeployed = call(
        &http,
        &tenant,
        Method::PATCH,
        "/api/v2/actions/triggers/post-login/bindings",
        Some(&token),
        Some(json!({
            "bindings": [{"ref": {"type": "action_id", "value": second_id}}]
        })),
    )
    .await;
    error_body(undeployed, StatusCode::BAD_REQUEST).await;

    let bound = json_of(
        call(&http, &tenant, Method::PATCH, "/api/v2/actions/triggers/post-login/bindings", Some(&token), Some(json!({
            "bindings": [{"ref": {"type": "action_name", "value": "first"}, "display_name": "First"}]
        }))).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(bound["bindings"][0]["trigger_id"], "post-login");
    assert_eq!(bound["bindings"][0]["action"]["id"], id.as_str());
    assert_eq!(bound["bindings"][0]["display_name"], "First");
    let binding_id = bound["bindings"][0]["id"]
        .as_str()
        .expect("binding id")
        .to_owned();

    build(&http, &tenant, &token, &second_id).await;
    call(
        &http,
        &tenant,
        Method::POST,
        &format!("/api/v2/actions/actions/{second_id}/deploy"),
        Some(&token),
        None,
    )
    .await;
    let replaced = json_of(
        call(
            &http,
            &tenant,
            Method::PATCH,
            "/api/v2/actions/triggers/post-login/bindings",
            Some(&token),
            Some(json!({
                "bindings": [
                    {"ref": {"type": "action_id", "value": second_id}, "display_name": "Second"},
                    {"ref": {"type": "binding_id", "value": binding_id}}
                ]
            })),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let names: Vec<&str> = replaced["bindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .map(|b| b["display_name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["Second", "First"],
        "the PATCH replaces the ordered list"
    );
    assert_eq!(
        replaced["bindings"][1]["id"],
        binding_id.as_str(),
        "a binding_id ref keeps the binding"
    );
    let listed = json_of(
        call(
            &http,
            &tenant,
            Method::GET,
            "/api/v2/actions/triggers/post-login/bindings",
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["bindings"], replaced["bindings"]);
    let other = json_of(
        call(
            &http,
            &tenant,
            Method::GET,
            "/api/v2/actions/triggers/credentials-exchange/bindings",
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(other["bindings"], json!([]), "bindings are per trigger");
    let unknown = call(
        &http,
        &tenant,
        Method::GET,
        "/api/v2/actions/triggers/nope/bindings",
        Some(&token),
        None,
    )
    .await;
    error_body(unknown, StatusCode::BAD_REQUEST).await;
    tenant.shutdown().await;
}

#[tokio::test]
async fn actions_bindings_and_client_settings_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = || companion_devtenant::TenantOptions {
        state_file: Some(dir.path().join("state.json")),
        ..crate::mgmt::options()
    };
    let (tenant, http) = crate::support::spawn_with(options()).await;
    let token = mint(&tenant, &CONFIG_SCOPES);
    let created = json_of(
        call(&http, &tenant, Method::POST, "/api/v2/actions/actions", Some(&token), Some(json!({
            "name": "kept", "supported_triggers": [{"id": "post-login", "version": "v3"}], "code": "// kept"
        }))).await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    build(&http, &tenant, &token, &id).await;
    call(
        &http,
        &tenant,
        Method::POST,
        &format!("/api/v2/actions/actions/{id}/deploy"),
        Some(&token),
        None,
    )
    .await;
    call(
        &http,
        &tenant,
        Method::PATCH,
        "/api/v2/actions/triggers/post-login/bindings",
        Some(&token),
        Some(json!({
            "bindings": [{"ref": {"type": "action_id", "value": id}}]
        })),
    )
    .await;
    call(
        &http,
        &tenant,
        Method::PATCH,
        &format!("/api/v2/clients/{}", demo::DESKTOP_CLIENT_ID),
        Some(&token),
        Some(json!({
            "refresh_token": {"rotation_type": "rotating", "expiration_type": "expiring"}
        })),
    )
    .await;
    tenant.shutdown().await;

    let (tenant, http) = crate::support::spawn_with(options()).await;
    let token = mint(&tenant, &CONFIG_SCOPES);
    let action = json_of(
        call(
            &http,
            &tenant,
            Method::GET,
            &format!("/api/v2/actions/actions/{id}"),
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        action["deployed_version"]["number"], 1,
        "the deployment persisted"
    );
    let bindings = json_of(
        call(
            &http,
            &tenant,
            Method::GET,
            "/api/v2/actions/triggers/post-login/bindings",
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        bindings["bindings"][0]["action"]["id"],
        id.as_str(),
        "the binding persisted"
    );
    let desktop = json_of(
        call(
            &http,
            &tenant,
            Method::GET,
            &format!("/api/v2/clients/{}", demo::DESKTOP_CLIENT_ID),
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        desktop["refresh_token"]["rotation_type"], "rotating",
        "client settings persisted"
    );
    tenant.shutdown().await;
}
