//! Applications and APIs: `/api/v2/resource-servers` (list, get, create, patch), `/api/v2/clients` (list, get,
//! create, patch) and `/api/v2/client-grants` (list with `client_id`/`audience` filters, create, patch, delete), in
//! Auth0's shapes, backed by the seeded world's `apis`, `clients` and `grants`.
//!
//! Lists answer a bare array, or `{start, limit, total, <key>}` with `include_totals=true`, paged by `page` and
//! `per_page`. The Management API itself is listed as a system resource server (`is_system: true`) that cannot be
//! changed. Client secrets are generated for confidential clients (any `app_type` but `native` and `spa`, or a
//! `token_endpoint_auth_method` other than `none`), returned on create, and listed only to callers holding
//! `read:client_keys`. Conflict and not-found messages are **[unverified]**; statuses follow the spec, except
//! that `PATCH /resource-servers/{id}` answers 200 (the spec lists 201; which one Auth0 sends is **[unverified]**).

use std::collections::{BTreeMap, HashMap};

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::body;
use super::methods::bad_path;
use super::objects::{client_grant_id, resource_server_id};
use crate::AppState;
use crate::error::MgmtError;
use crate::oidc::tokens::MGMT_GRANT_AUDIENCE;
use crate::store::TenantState;
use crate::world::{ApiSeed, ClientGrantSeed, ClientSeed};

/// `read:resource_servers`.
pub const READ_RESOURCE_SERVERS: &str = "read:resource_servers";
/// `create:resource_servers`.
pub const CREATE_RESOURCE_SERVERS: &str = "create:resource_servers";
/// `update:resource_servers`.
pub const UPDATE_RESOURCE_SERVERS: &str = "update:resource_servers";
/// `read:clients`.
pub const READ_CLIENTS: &str = "read:clients";
/// `read:client_keys`: also lists client secrets.
pub const READ_CLIENT_KEYS: &str = "read:client_keys";
/// `create:clients`.
pub const CREATE_CLIENTS: &str = "create:clients";
/// `update:clients`.
pub const UPDATE_CLIENTS: &str = "update:clients";
/// `read:client_grants`.
pub const READ_CLIENT_GRANTS: &str = "read:client_grants";
/// `create:client_grants`.
pub const CREATE_CLIENT_GRANTS: &str = "create:client_grants";
/// `update:client_grants`.
pub const UPDATE_CLIENT_GRANTS: &str = "update:client_grants";
/// `delete:client_grants`.
pub const DELETE_CLIENT_GRANTS: &str = "delete:client_grants";

/// Application types Auth0 accepts here.
const APP_TYPES: [&str; 4] = ["native", "spa", "regular_web", "non_interactive"];
/// Token endpoint authentication methods accepted here.
const AUTH_METHODS: [&str; 3] = ["none", "client_secret_post", "client_secret_basic"];

/// Auth0's default `refresh_token` settings of a new client.
pub fn default_refresh_token() -> Value {
    json!({
        "rotation_type": "non-rotating",
        "expiration_type": "non-expiring",
        "leeway": 0,
        "token_lifetime": 2_592_000,
        "infinite_token_lifetime": true,
        "idle_token_lifetime": 1_296_000,
        "infinite_idle_token_lifetime": true
    })
}

/// Paging parameters of a list call.
fn paginate(
    items: Vec<Value>,
    query: &HashMap<String, String>,
    key: &str,
) -> Result<Value, MgmtError> {
    let number = |name: &str| -> Result<Option<usize>, MgmtError> {
        query
            .get(name)
            .map(|v| {
                v.parse::<usize>().map_err(|_| {
                    MgmtError::bad_request(
                        format!("Query validation error: 'Expected type integer but found type string' on property {name}."),
                        "invalid_query_string",
                    )
                })
            })
            .transpose()
    };
    let page = number("page")?;
    let per_page = number("per_page")?.map(|n| n.clamp(1, 100));
    let totals = query.get("include_totals").is_some_and(|v| v == "true");
    let total = items.len();
    let (start, limit, items) = match (page, per_page) {
        (None, None) => (0, total, items),
        (page, per_page) => {
            let per_page = per_page.unwrap_or(50);
            let start = page.unwrap_or(0).saturating_mul(per_page);
            (
                start,
                per_page,
                items.into_iter().skip(start).take(per_page).collect(),
            )
        }
    };
    Ok(if totals {
        json!({"start": start, "limit": limit, "length": items.len(), "total": total, key: items})
    } else {
        Value::Array(items)
    })
}

/// The strings at `key`, if present.
fn string_array(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, MgmtError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(body::wrong_type("string", other, key)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(body::wrong_type("array", other, key)),
    }
}

fn enum_value<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, MgmtError> {
    let value = body::string(map, key)?;
    if let Some(v) = value
        && !allowed.contains(&v)
    {
        return Err(body::invalid(&format!(
            "'No enum match for: \"{v}\"' on property {key}."
        )));
    }
    Ok(value)
}

fn conflict(message: &str) -> MgmtError {
    MgmtError::new(StatusCode::CONFLICT, message, Some("conflict"))
}

fn random_string(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Resource servers

fn system_resource_server(state: &AppState) -> Value {
    let identifier = state.mgmt_audience();
    json!({
        "id": resource_server_id(MGMT_GRANT_AUDIENCE),
        "name": "Auth0 Management API",
        "identifier": identifier,
        "is_system": true,
        "scopes": [],
        "signing_alg": "RS256",
        "allow_offline_access": false,
        "token_lifetime": 86_400,
        "token_lifetime_for_web": 7200,
        "skip_consent_for_verifiable_first_party_clients": false
    })
}

fn served_resource_server(api: &ApiSeed, s: &TenantState) -> Value {
    let descriptions = s.mgmt.scope_descriptions.get(&api.identifier);
    let scopes: Vec<Value> = api
        .scopes
        .iter()
        .map(|scope| {
            let description = descriptions
                .and_then(|d| d.get(scope))
                .cloned()
                .unwrap_or_default();
            json!({"value": scope, "description": description})
        })
        .collect();
    json!({
        "id": resource_server_id(&api.identifier),
        "name": api.name,
        "identifier": api.identifier,
        "scopes": scopes,
        "signing_alg": "RS256",
        "allow_offline_access": api.allow_offline_access,
        "token_lifetime": api.token_lifetime,
        "token_lifetime_for_web": api.token_lifetime.min(7200),
        "skip_consent_for_verifiable_first_party_clients": true,
        "enforce_policies": false,
        "token_dialect": "access_token"
    })
}

fn resource_server_not_found() -> MgmtError {
    MgmtError::not_found(
        "The resource server does not exist",
        "inexistent_resource_server",
    )
}

/// Parses `scopes: [{value, description?}]`.
fn scopes_of(map: &Map<String, Value>) -> Result<Option<Vec<(String, String)>>, MgmtError> {
    let Some(value) = map.get("scopes") else {
        return Ok(None);
    };
    let Value::Array(items) = value else {
        return Err(body::wrong_type("array", value, "scopes"));
    };
    let mut scopes = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(scope) = item else {
            return Err(body::wrong_type("object", item, "scopes"));
        };
        let value = body::string(scope, "value")?.ok_or_else(|| {
            body::invalid("'Missing required property: value' on property scopes.")
        })?;
        let description = body::string(scope, "description")?.unwrap_or_default();
        scopes.push((value.to_owned(), description.to_owned()));
    }
    Ok(Some(scopes))
}

const RESOURCE_SERVER_FIELDS: [&str; 7] = [
    "name",
    "identifier",
    "scopes",
    "signing_alg",
    "allow_offline_access",
    "token_lifetime",
    "skip_consent_for_verifiable_first_party_clients",
];

fn apply_resource_server(
    api: &mut ApiSeed,
    s: &mut TenantState,
    map: &Map<String, Value>,
) -> Result<(), MgmtError> {
    if let Some(name) = body::string(map, "name")? {
        name.clone_into(&mut api.name);
    }
    if let Some(offline) = body::boolean(map, "allow_offline_access")? {
        api.allow_offline_access = offline;
    }
    if let Some(value) = map.get("token_lifetime") {
        api.token_lifetime = value
            .as_u64()
            .filter(|n| (1..=2_592_000).contains(n))
            .ok_or_else(|| {
                body::invalid("'Value out of range or not an integer' on property token_lifetime.")
            })?;
    }
    if let Some(alg) = body::string(map, "signing_alg")?
        && alg != "RS256"
    {
        return Err(body::invalid(&format!(
            "'No enum match for: \"{alg}\"' on property signing_alg."
        )));
    }
    body::boolean(map, "skip_consent_for_verifiable_first_party_clients")?;
    if let Some(scopes) = scopes_of(map)? {
        api.scopes = scopes.iter().map(|(v, _)| v.clone()).collect();
        let descriptions: BTreeMap<String, String> = scopes.into_iter().collect();
        s.mgmt
            .scope_descriptions
            .insert(api.identifier.clone(), descriptions);
    }
    Ok(())
}

/// `GET /api/v2/resource-servers`.
pub async fn list_resource_servers(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, MgmtError> {
    caller.require(&[READ_RESOURCE_SERVERS])?;
    let mut items = vec![system_resource_server(&state)];
    state
        .store
        .read(|s| items.extend(s.apis.iter().map(|a| served_resource_server(a, s))));
    Ok(Json(paginate(items, &query, "resource_servers")?))
}

/// `GET /api/v2/resource-servers/{id}` (the id or the identifier, as Auth0 accepts both).
pub async fn get_resource_server(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, MgmtError> {
    caller.require(&[READ_RESOURCE_SERVERS])?;
    let Path(id) = path.map_err(|e| bad_path(&e))?;
    if id == resource_server_id(MGMT_GRANT_AUDIENCE) || id == state.mgmt_audience() {
        return Ok(Json(system_resource_server(&state)));
    }
    state
        .store
        .read(|s| {
            s.apis
                .iter()
                .find(|a| resource_server_id(&a.identifier) == id || a.identifier == id)
                .map(|a| served_resource_server(a, s))
        })
        .map(Json)
        .ok_or_else(resource_server_not_found)
}

/// `POST /api/v2/resource-servers` → 201.
pub async fn create_resource_server(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    bytes: Bytes,
) -> Result<Response, MgmtError> {
    caller.require(&[CREATE_RESOURCE_SERVERS])?;
    let map = body::object(&bytes, &RESOURCE_SERVER_FIELDS, &["identifier"])?;
    let identifier = body::string(&map, "identifier")?
        .unwrap_or_default()
        .to_owned();
    if identifier.is_empty() {
        return Err(body::invalid(
            "'String is too short (0 chars), minimum 1' on property identifier.",
        ));
    }
    if identifier == state.mgmt_audience() {
        return Err(conflict(
            "A resource server with the same identifier already exists",
        ));
    }
    let served = state.store.write(|s| {
        if s.apis.iter().any(|a| a.identifier == identifier) {
            return Err(conflict(
                "A resource server with the same identifier already exists",
            ));
        }
        let mut api = ApiSeed {
            identifier: identifier.clone(),
            name: identifier.clone(),
            scopes: Vec::new(),
            token_lifetime: 86_400,
            allow_offline_access: false,
        };
        apply_resource_server(&mut api, s, &map)?;
        s.apis.push(api.clone());
        Ok(served_resource_server(&api, s))
    })?;
    Ok((StatusCode::CREATED, Json(served)).into_response())
}

/// `PATCH /api/v2/resource-servers/{id}` → 200 (the identifier cannot change; the system API cannot be changed).
pub async fn update_resource_server(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<Value>, MgmtError> {
    caller.require(&[UPDATE_RESOURCE_SERVERS])?;
    let Path(id) = path.map_err(|e| bad_path(&e))?;
    let allowed: Vec<&str> = RESOURCE_SERVER_FIELDS
        .iter()
        .copied()
        .filter(|f| *f != "identifier")
        .collect();
    let map = body::object(&bytes, &allowed, &[])?;
    if id == resource_server_id(MGMT_GRANT_AUDIENCE) || id == state.mgmt_audience() {
        return Err(MgmtError::new(
            StatusCode::FORBIDDEN,
            "You cannot update the Auth0 Management API",
            Some("operation_not_supported"),
        ));
    }
    state.store.write(|s| {
        let index = s
            .apis
            .iter()
            .position(|a| resource_server_id(&a.identifier) == id || a.identifier == id)
            .ok_or_else(resource_server_not_found)?;
        let mut api = s.apis[index].clone();
        apply_resource_server(&mut api, s, &map)?;
        s.apis[index] = api.clone();
        Ok(Json(served_resource_server(&api, s)))
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Clients

fn is_confidential(app_type: &str, auth_method: Option<&str>) -> bool {
    match auth_method {
        Some(method) => method != "none",
        None => !matches!(app_type, "native" | "spa"),
    }
}

fn served_client(client: &ClientSeed, s: &TenantState, with_secret: bool) -> Value {
    let refresh_token = s
        .mgmt
        .refresh_tokens
        .get(&client.client_id)
        .cloned()
        .unwrap_or_else(default_refresh_token);
    let auth_method = if client.client_secret.is_some() {
        "client_secret_post"
    } else {
        "none"
    };
    let mut served = json!({
        "client_id": client.client_id,
        "name": client.name,
        "description": "",
        "app_type": client.app_type,
        "is_first_party": true,
        "oidc_conformant": true,
        "global": false,
        "callbacks": client.callbacks,
        "allowed_logout_urls": client.allowed_logout_urls,
        "grant_types": client.grant_types,
        "token_endpoint_auth_method": auth_method,
        "refresh_token": refresh_token,
        "jwt_configuration": {"alg": "RS256", "lifetime_in_seconds": 36_000, "secret_encoded": false},
        "sso_disabled": false,
        "cross_origin_authentication": false,
        "custom_login_page_on": true
    });
    if with_secret && let Some(secret) = &client.client_secret {
        served["client_secret"] = Value::String(secret.clone());
    }
    served
}

fn client_not_found() -> MgmtError {
    MgmtError::not_found("The client does not exist", "inexistent_client")
}

const CLIENT_FIELDS: [&str; 9] = [
    "name",
    "app_type",
    "callbacks",
    "allowed_logout_urls",
    "grant_types",
    "token_endpoint_auth_method",
    "refresh_token",
    "oidc_conformant",
    "description",
];

/// Validates a `refresh_token` object and merges it into `current`.
fn merge_refresh_token(current: &mut Value, update: &Value) -> Result<(), MgmtError> {
    let Value::Object(update) = update else {
        return Err(body::wrong_type("object", update, "refresh_token"));
    };
    let allowed = [
        "rotation_type",
        "expiration_type",
        "leeway",
        "token_lifetime",
        "infinite_token_lifetime",
        "idle_token_lifetime",
        "infinite_idle_token_lifetime",
    ];
    if let Some(extra) = update.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(body::invalid(&format!(
            "'Additional properties not allowed: {extra}' on property refresh_token."
        )));
    }
    enum_value(update, "rotation_type", &["rotating", "non-rotating"])?;
    enum_value(update, "expiration_type", &["expiring", "non-expiring"])?;
    for key in ["leeway", "token_lifetime", "idle_token_lifetime"] {
        if let Some(value) = update.get(key)
            && !value.is_u64()
        {
            return Err(body::wrong_type("integer", value, key));
        }
    }
    for key in ["infinite_token_lifetime", "infinite_idle_token_lifetime"] {
        body::boolean(update, key)?;
    }
    if let Value::Object(current) = current {
        for (key, value) in update {
            current.insert(key.clone(), value.clone());
        }
    }
    Ok(())
}

fn apply_client(
    client: &mut ClientSeed,
    s: &mut TenantState,
    map: &Map<String, Value>,
) -> Result<(), MgmtError> {
    if let Some(name) = body::string(map, "name")? {
        name.clone_into(&mut client.name);
    }
    if let Some(app_type) = enum_value(map, "app_type", &APP_TYPES)? {
        app_type.clone_into(&mut client.app_type);
    }
    body::string(map, "description")?;
    body::boolean(map, "oidc_conformant")?;
    if let Some(callbacks) = string_array(map, "callbacks")? {
        client.callbacks = callbacks;
    }
    if let Some(urls) = string_array(map, "allowed_logout_urls")? {
        client.allowed_logout_urls = urls;
    }
    if let Some(grant_types) = string_array(map, "grant_types")? {
        client.grant_types = grant_types;
    }
    let auth_method = enum_value(map, "token_endpoint_auth_method", &AUTH_METHODS)?;
    let confidential = is_confidential(&client.app_type, auth_method);
    if confidential && client.client_secret.is_none() {
        client.client_secret = Some(random_string(64));
    } else if !confidential {
        client.client_secret = None;
    }
    if let Some(update) = map.get("refresh_token") {
        let mut current = s
            .mgmt
            .refresh_tokens
            .get(&client.client_id)
            .cloned()
            .unwrap_or_else(default_refresh_token);
        merge_refresh_token(&mut current, update)?;
        s.mgmt
            .refresh_tokens
            .insert(client.client_id.clone(), current);
    }
    Ok(())
}

/// `GET /api/v2/clients`.
pub async fn list_clients(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, MgmtError> {
    caller.require(&[READ_CLIENTS, READ_CLIENT_KEYS])?;
    let with_secret = caller.has_scope(READ_CLIENT_KEYS);
    let items = state.store.read(|s| {
        s.clients
            .iter()
            .filter(|c| {
                query
                    .get("app_type")
                    .is_none_or(|t| t.split(',').any(|t| t == c.app_type))
            })
            .map(|c| served_client(c, s, with_secret))
            .collect()
    });
    Ok(Json(paginate(items, &query, "clients")?))
}

/// `GET /api/v2/clients/{id}`.
pub async fn get_client(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, MgmtError> {
    caller.require(&[READ_CLIENTS, READ_CLIENT_KEYS])?;
    let Path(id) = path.map_err(|e| bad_path(&e))?;
    let with_secret = caller.has_scope(READ_CLIENT_KEYS);
    state
        .store
        .read(|s| s.client(&id).map(|c| served_client(c, s, with_secret)))
        .map(Json)
        .ok_or_else(client_not_found)
}

/// `POST /api/v2/clients` → 201, with the generated `client_secret` of a confidential client.
pub async fn create_client(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    bytes: Bytes,
) -> Result<Response, MgmtError> {
    caller.require(&[CREATE_CLIENTS])?;
    let map = body::object(&bytes, &CLIENT_FIELDS, &["name"])?;
    let name = body::string(&map, "name")?.unwrap_or_default().to_owned();
    if name.is_empty() {
        return Err(body::invalid(
            "'String is too short (0 chars), minimum 1' on property name.",
        ));
    }
    let served = state.store.write(|s| {
        let mut client = ClientSeed {
            client_id: random_string(32),
            name,
            app_type: "regular_web".to_owned(),
            grant_types: vec![
                "authorization_code".to_owned(),
                "implicit".to_owned(),
                "refresh_token".to_owned(),
                "client_credentials".to_owned(),
            ],
            callbacks: Vec::new(),
            allowed_logout_urls: Vec::new(),
            client_secret: None,
        };
        apply_client(&mut client, s, &map)?;
        s.clients.push(client.clone());
        Ok::<_, MgmtError>(served_client(&client, s, true))
    })?;
    Ok((StatusCode::CREATED, Json(served)).into_response())
}

/// `PATCH /api/v2/clients/{id}`: name, app type, callbacks, logout URLs, grant types, authentication method and
/// refresh-token settings (merged).
pub async fn update_client(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<Value>, MgmtError> {
    caller.require(&[UPDATE_CLIENTS])?;
    let Path(id) = path.map_err(|e| bad_path(&e))?;
    let map = body::object(&bytes, &CLIENT_FIELDS, &[])?;
    let with_secret = caller.has_scope(READ_CLIENT_KEYS);
    state.store.write(|s| {
        let index = s
            .clients
            .iter()
            .position(|c| c.client_id == id)
            .ok_or_else(client_not_found)?;
        let mut client = s.clients[index].clone();
        apply_client(&mut client, s, &map)?;
        s.clients[index] = client.clone();
        Ok(Json(served_client(&client, s, with_secret)))
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Client grants

fn served_grant(grant: &ClientGrantSeed, state: &AppState) -> Value {
    let mgmt = state.mgmt_audience();
    let audience = if grant.audience == MGMT_GRANT_AUDIENCE {
        mgmt.clone()
    } else {
        grant.audience.clone()
    };
    json!({
        "id": client_grant_id(&grant.client_id, &grant.audience, &mgmt),
        "client_id": grant.client_id,
        "audience": audience,
        "scope": grant.scope,
        "allow_any_organization": false,
        "is_system": false,
        "subject_type": "client"
    })
}

fn grant_not_found() -> MgmtError {
    MgmtError::not_found("The client grant does not exist", "inexistent_client_grant")
}

fn grant_index(s: &TenantState, id: &str, mgmt: &str) -> Result<usize, MgmtError> {
    s.grants
        .iter()
        .position(|g| client_grant_id(&g.client_id, &g.audience, mgmt) == id)
        .ok_or_else(grant_not_found)
}

fn normalized_audience(audience: &str, mgmt: &str) -> String {
    if audience == MGMT_GRANT_AUDIENCE {
        mgmt.to_owned()
    } else {
        audience.to_owned()
    }
}

/// Checks that every scope is one the API defines (custom APIs only; the Management API's are not listed here).
fn check_scopes(
    s: &TenantState,
    audience: &str,
    mgmt: &str,
    scopes: &[String],
) -> Result<(), MgmtError> {
    if audience == mgmt {
        return Ok(());
    }
    let api = s
        .apis
        .iter()
        .find(|a| a.identifier == audience)
        .ok_or_else(resource_server_not_found)?;
    if let Some(unknown) = scopes.iter().find(|scope| !api.scopes.contains(scope)) {
        return Err(body::invalid(&format!(
            "'Scope not defined by the resource server: {unknown}'."
        )));
    }
    Ok(())
}

/// `GET /api/v2/client-grants` (filters `client_id`, `audience`).
pub async fn list_grants(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, MgmtError> {
    caller.require(&[READ_CLIENT_GRANTS])?;
    let mgmt = state.mgmt_audience();
    let items = state.store.read(|s| {
        s.grants
            .iter()
            .filter(|g| query.get("client_id").is_none_or(|c| *c == g.client_id))
            .filter(|g| {
                query
                    .get("audience")
                    .is_none_or(|a| *a == normalized_audience(&g.audience, &mgmt))
            })
            .map(|g| served_grant(g, &state))
            .collect()
    });
    Ok(Json(paginate(items, &query, "client_grants")?))
}

/// `POST /api/v2/client-grants` → 201; 404 for an unknown client or API, 409 when the pair already has a grant.
pub async fn create_grant(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    bytes: Bytes,
) -> Result<Response, MgmtError> {
    caller.require(&[CREATE_CLIENT_GRANTS])?;
    let map = body::object(
        &bytes,
        &["client_id", "audience", "scope"],
        &["audience", "client_id"],
    )?;
    let client_id = body::string(&map, "client_id")?
        .unwrap_or_default()
        .to_owned();
    let audience = body::string(&map, "audience")?
        .unwrap_or_default()
        .to_owned();
    let scope = string_array(&map, "scope")?.unwrap_or_default();
    let mgmt = state.mgmt_audience();
    let served = state.store.write(|s| {
        if s.client(&client_id).is_none() {
            return Err(client_not_found());
        }
        check_scopes(s, &audience, &mgmt, &scope)?;
        if s.grants.iter().any(|g| {
            g.client_id == client_id && normalized_audience(&g.audience, &mgmt) == audience
        }) {
            return Err(conflict(
                "A client grant for this client and audience already exists",
            ));
        }
        let grant = ClientGrantSeed {
            client_id: client_id.clone(),
            audience: audience.clone(),
            scope,
        };
        s.grants.push(grant.clone());
        Ok(served_grant(&grant, &state))
    })?;
    Ok((StatusCode::CREATED, Json(served)).into_response())
}

/// `PATCH /api/v2/client-grants/{id}`: replaces `scope`.
pub async fn update_grant(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<Value>, MgmtError> {
    caller.require(&[UPDATE_CLIENT_GRANTS])?;
    let Path(id) = path.map_err(|e| bad_path(&e))?;
    let map = body::object(&bytes, &["scope"], &[])?;
    let scope = string_array(&map, "scope")?;
    let mgmt = state.mgmt_audience();
    state.store.write(|s| {
        let index = grant_index(s, &id, &mgmt)?;
        if let Some(scope) = scope {
            let audience = normalized_audience(&s.grants[index].audience, &mgmt);
            check_scopes(s, &audience, &mgmt, &scope)?;
            s.grants[index].scope = scope;
        }
        Ok(Json(served_grant(&s.grants[index], &state)))
    })
}

/// `DELETE /api/v2/client-grants/{id}` → 204.
pub async fn delete_grant(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, MgmtError> {
    caller.require(&[DELETE_CLIENT_GRANTS])?;
    let Path(id) = path.map_err(|e| bad_path(&e))?;
    let mgmt = state.mgmt_audience();
    state.store.write(|s| {
        let index = grant_index(s, &id, &mgmt)?;
        s.grants.remove(index);
        Ok(StatusCode::NO_CONTENT)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_totals() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let mut query = HashMap::new();
        assert_eq!(
            paginate(items.clone(), &query, "x").expect("all"),
            json!([0, 1, 2, 3, 4])
        );
        query.insert("per_page".to_owned(), "2".to_owned());
        query.insert("page".to_owned(), "1".to_owned());
        query.insert("include_totals".to_owned(), "true".to_owned());
        let paged = paginate(items.clone(), &query, "x").expect("paged");
        assert_eq!(paged["x"], json!([2, 3]));
        assert_eq!(paged["total"], 5);
        query.insert("page".to_owned(), "x".to_owned());
        assert!(
            paginate(items, &query, "x").is_err(),
            "a non-number page is refused"
        );
    }

    #[test]
    fn refresh_token_settings_are_validated_and_merged() {
        let mut current = default_refresh_token();
        merge_refresh_token(&mut current, &json!({"rotation_type": "rotating"})).expect("valid");
        assert_eq!(current["rotation_type"], "rotating");
        assert_eq!(current["leeway"], 0, "other keys are kept");
        assert!(merge_refresh_token(&mut current, &json!({"rotation_type": "sometimes"})).is_err());
        assert!(merge_refresh_token(&mut current, &json!({"bogus": 1})).is_err());
    }
}
