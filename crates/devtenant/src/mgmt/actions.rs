//! Actions: `POST /api/v2/actions/actions`, `GET`/`PATCH /api/v2/actions/actions/{id}`, `POST
//! /api/v2/actions/actions/{id}/deploy`, and `GET`/`PATCH /api/v2/actions/triggers/{trigger}/bindings`.
//!
//! The build is simulated: after a create or a code change the Action is `pending`, and each read advances it one
//! step (`pending` → `building` → `built`); it is `built` anyway two tenant-clock seconds after the change. Deploying
//! needs `built` and answers 200 with the new version object (`deployed: false`, as recorded, although the spec says
//! 202). Binding PATCH replaces the trigger's ordered list; every referenced Action must exist and be deployed.
//! Secret values are stored as digests and never served. Error messages are **[unverified]**.

use std::collections::HashMap;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::body;
use super::methods::bad_path;
use super::objects::{StoredAction, StoredBinding, StoredSecret, StoredVersion};
use crate::AppState;
use crate::clock::auth0_timestamp;
use crate::error::MgmtError;
use crate::store::digest;

/// `read:actions`.
pub const READ_ACTIONS: &str = "read:actions";
/// `create:actions`.
pub const CREATE_ACTIONS: &str = "create:actions";
/// `update:actions`.
pub const UPDATE_ACTIONS: &str = "update:actions";

/// Seconds after a change when the build is done regardless of reads.
const BUILD_SECONDS: i64 = 2;
/// Triggers whose bindings are served.
const TRIGGERS: [&str; 6] = [
    "post-login",
    "credentials-exchange",
    "pre-user-registration",
    "post-user-registration",
    "post-change-password",
    "send-phone-message",
];

fn action_not_found() -> MgmtError {
    MgmtError::not_found("The action does not exist.", "action_not_found")
}

fn status_of(action: &StoredAction, now: i64) -> &'static str {
    if action.reads_since_update >= 2 || now - action.updated_unix >= BUILD_SECONDS {
        "built"
    } else if action.reads_since_update == 1 {
        "building"
    } else {
        "pending"
    }
}

fn served_secrets(action: &StoredAction) -> Vec<Value> {
    action
        .secrets
        .iter()
        .map(|s| json!({"name": s.name, "updated_at": s.updated_at}))
        .collect()
}

fn served_version(action: &StoredAction, version: &StoredVersion, deployed: bool) -> Value {
    json!({
        "id": version.id,
        "action_id": action.id,
        "code": version.code,
        "dependencies": action.dependencies,
        "deployed": deployed,
        "number": version.number,
        "runtime": version.runtime,
        "secrets": served_secrets(action),
        "status": "built",
        "supported_triggers": action.supported_triggers,
        "built_at": version.created_at,
        "created_at": version.created_at,
        "updated_at": version.created_at,
        "action": summary(action)
    })
}

fn summary(action: &StoredAction) -> Value {
    json!({
        "id": action.id,
        "name": action.name,
        "supported_triggers": action.supported_triggers,
        "all_changes_deployed": action.all_changes_deployed,
        "created_at": action.created_at,
        "updated_at": action.updated_at
    })
}

fn served_action(action: &StoredAction, now: i64) -> Value {
    let mut served = json!({
        "id": action.id,
        "name": action.name,
        "supported_triggers": action.supported_triggers,
        "code": action.code,
        "dependencies": action.dependencies,
        "runtime": action.runtime,
        "secrets": served_secrets(action),
        "status": status_of(action, now),
        "all_changes_deployed": action.all_changes_deployed,
        "created_at": action.created_at,
        "updated_at": action.updated_at
    });
    if let Some(version) = action.versions.last() {
        served["deployed_version"] = served_version(action, version, true);
    }
    served
}

const ACTION_FIELDS: [&str; 7] = [
    "name",
    "supported_triggers",
    "code",
    "dependencies",
    "runtime",
    "secrets",
    "deploy",
];

/// Checks `supported_triggers: [{id, version}]`.
fn check_triggers(value: &Value) -> Result<(), MgmtError> {
    let Value::Array(items) = value else {
        return Err(body::wrong_type("array", value, "supported_triggers"));
    };
    for item in items {
        let Value::Object(trigger) = item else {
            return Err(body::wrong_type("object", item, "supported_triggers"));
        };
        if body::string(trigger, "id")?.is_none() {
            return Err(body::invalid(
                "'Missing required property: id' on property supported_triggers.",
            ));
        }
        body::string(trigger, "version")?;
    }
    Ok(())
}

/// Parses `secrets: [{name, value}]` into stored secrets (digests only).
fn secrets_of(value: &Value, now: &str) -> Result<Vec<StoredSecret>, MgmtError> {
    let Value::Array(items) = value else {
        return Err(body::wrong_type("array", value, "secrets"));
    };
    items
        .iter()
        .map(|item| {
            let Value::Object(secret) = item else {
                return Err(body::wrong_type("object", item, "secrets"));
            };
            let name = body::string(secret, "name")?.ok_or_else(|| {
                body::invalid("'Missing required property: name' on property secrets.")
            })?;
            let value = body::string(secret, "value")?.unwrap_or_default();
            Ok(StoredSecret {
                name: name.to_owned(),
                value_digest: digest(value),
                updated_at: now.to_owned(),
            })
        })
        .collect()
}

fn apply_update(
    action: &mut StoredAction,
    map: &Map<String, Value>,
    now: &str,
) -> Result<bool, MgmtError> {
    let mut changed = false;
    if let Some(name) = body::string(map, "name")? {
        name.clone_into(&mut action.name);
    }
    if let Some(triggers) = map.get("supported_triggers") {
        check_triggers(triggers)?;
        action.supported_triggers = triggers.clone();
        changed = true;
    }
    if let Some(code) = body::string(map, "code")? {
        changed |= code != action.code;
        code.clone_into(&mut action.code);
    }
    if let Some(runtime) = body::string(map, "runtime")? {
        changed |= runtime != action.runtime;
        runtime.clone_into(&mut action.runtime);
    }
    if let Some(dependencies) = map.get("dependencies") {
        if !dependencies.is_array() {
            return Err(body::wrong_type("array", dependencies, "dependencies"));
        }
        changed |= *dependencies != action.dependencies;
        action.dependencies = dependencies.clone();
    }
    if let Some(secrets) = map.get("secrets") {
        let secrets = secrets_of(secrets, now)?;
        let same = secrets.len() == action.secrets.len()
            && secrets
                .iter()
                .zip(&action.secrets)
                .all(|(a, b)| a.name == b.name && a.value_digest == b.value_digest);
        changed |= !same;
        action.secrets = secrets;
    }
    Ok(changed)
}

/// `POST /api/v2/actions/actions` → 201 (`deploy: true` is not supported here and is refused).
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    bytes: Bytes,
) -> Result<Response, MgmtError> {
    caller.require(&[CREATE_ACTIONS])?;
    let map = body::object(&bytes, &ACTION_FIELDS, &["name", "supported_triggers"])?;
    if body::boolean(&map, "deploy")? == Some(true) {
        return Err(body::invalid(
            "'deploy: true is not supported by the dev tenant; deploy explicitly'.",
        ));
    }
    let now = state.clock.now();
    let stamp = auth0_timestamp(now);
    let mut action = StoredAction {
        id: uuid::Uuid::new_v4().to_string(),
        name: String::new(),
        supported_triggers: Value::Array(Vec::new()),
        code: String::new(),
        runtime: "node22".to_owned(),
        dependencies: Value::Array(Vec::new()),
        secrets: Vec::new(),
        created_at: stamp.clone(),
        updated_at: stamp.clone(),
        updated_unix: now.unix_timestamp(),
        reads_since_update: 0,
        versions: Vec::new(),
        all_changes_deployed: false,
    };
    apply_update(&mut action, &map, &stamp)?;
    let served = state.store.write(|s| {
        if s.mgmt.actions.iter().any(|a| a.name == action.name) {
            return Err(MgmtError::new(
                StatusCode::CONFLICT,
                format!("An action with the name '{}' already exists.", action.name),
                Some("action_conflict"),
            ));
        }
        let served = served_action(&action, now.unix_timestamp());
        s.mgmt.actions.push(action);
        Ok(served)
    })?;
    Ok((StatusCode::CREATED, Json(served)).into_response())
}

/// `GET /api/v2/actions/actions` (filter `actionName`).
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, MgmtError> {
    caller.require(&[READ_ACTIONS])?;
    let now = state.clock.unix();
    let actions: Vec<Value> = state.store.read(|s| {
        s.mgmt
            .actions
            .iter()
            .filter(|a| query.get("actionName").is_none_or(|n| *n == a.name))
            .map(|a| served_action(a, now))
            .collect()
    });
    Ok(Json(
        json!({"total": actions.len(), "page": 0, "per_page": 50, "actions": actions}),
    ))
}

/// `GET /api/v2/actions/actions/{id}`: advances the simulated build by one step.
pub async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, MgmtError> {
    caller.require(&[READ_ACTIONS])?;
    let Path(id) = path.map_err(|e| bad_path(&e))?;
    let now = state.clock.unix();
    state.store.write(|s| {
        let action = s
            .mgmt
            .actions
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(action_not_found)?;
        let served = served_action(action, now);
        action.reads_since_update = action.reads_since_update.saturating_add(1);
        Ok(Json(served))
    })
}

/// `PATCH /api/v2/actions/actions/{id}`: a change of code, runtime, dependencies or secrets restarts the build.
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<Value>, MgmtError> {
    caller.require(&[UPDATE_ACTIONS])?;
    let Path(id) = path.map_err(|e| bad_path(&e))?;
    let allowed: Vec<&str> = ACTION_FIELDS
        .iter()
        .copied()
        .filter(|f| *f != "deploy")
        .collect();
    let map = body::object(&bytes, &allowed, &[])?;
    let now = state.clock.now();
    let stamp = auth0_timestamp(now);
    state.store.write(|s| {
        let action = s
            .mgmt
            .actions
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(action_not_found)?;
        let mut updated = action.clone();
        if apply_update(&mut updated, &map, &stamp)? {
            updated.reads_since_update = 0;
            updated.updated_unix = now.unix_timestamp();
            updated.all_changes_deployed = false;
        }
        updated.updated_at.clone_from(&stamp);
        *action = updated;
        Ok(Json(served_action(action, now.unix_timestamp())))
    })
}

/// `POST /api/v2/actions/actions/{id}/deploy` → 200 with the new version (`deployed: false`, as recorded).
pub async fn deploy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, MgmtError> {
    caller.require(&[CREATE_ACTIONS])?;
    let Path(id) = path.map_err(|e| bad_path(&e))?;
    let now = state.clock.now();
    state.store.write(|s| {
        let action = s
            .mgmt
            .actions
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(action_not_found)?;
        if status_of(action, now.unix_timestamp()) != "built" {
            return Err(MgmtError::bad_request(
                "The action has not been built yet; retry when its status is built.",
                "action_not_built",
            ));
        }
        let number = action.versions.last().map_or(1, |v| v.number + 1);
        let version = StoredVersion {
            id: uuid::Uuid::new_v4().to_string(),
            number,
            code: action.code.clone(),
            runtime: action.runtime.clone(),
            created_at: auth0_timestamp(now),
        };
        action.versions.push(version.clone());
        action.all_changes_deployed = true;
        Ok(Json(served_version(action, &version, false)))
    })
}

fn check_trigger(trigger: &str) -> Result<(), MgmtError> {
    if TRIGGERS.contains(&trigger) {
        Ok(())
    } else {
        Err(MgmtError::bad_request(
            format!(
                "Path validation error: 'No enum match for: \"{trigger}\"' on property triggerId."
            ),
            "invalid_uri",
        ))
    }
}

fn served_bindings(state: &AppState, trigger: &str) -> Vec<Value> {
    state.store.read(|s| {
        s.mgmt
            .bindings
            .get(trigger)
            .map(|bindings| {
                bindings
                    .iter()
                    .map(|b| {
                        let action = s
                            .mgmt
                            .actions
                            .iter()
                            .find(|a| a.id == b.action_id)
                            .map_or(Value::Null, summary);
                        json!({
                            "id": b.id,
                            "trigger_id": trigger,
                            "display_name": b.display_name,
                            "action": action,
                            "created_at": b.created_at,
                            "updated_at": b.updated_at
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// `GET /api/v2/actions/triggers/{trigger}/bindings`.
pub async fn list_bindings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, MgmtError> {
    caller.require(&[READ_ACTIONS])?;
    let Path(trigger) = path.map_err(|e| bad_path(&e))?;
    check_trigger(&trigger)?;
    let bindings = served_bindings(&state, &trigger);
    Ok(Json(
        json!({"total": bindings.len(), "page": 0, "per_page": 50, "bindings": bindings}),
    ))
}

/// `PATCH /api/v2/actions/triggers/{trigger}/bindings`: body `{"bindings":[{"ref":{"type","value"},
/// "display_name"?}]}` replaces the whole ordered list.
pub async fn update_bindings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<Value>, MgmtError> {
    caller.require(&[UPDATE_ACTIONS])?;
    let Path(trigger) = path.map_err(|e| bad_path(&e))?;
    check_trigger(&trigger)?;
    let map = body::object(&bytes, &["bindings"], &[])?;
    let items = match map.get("bindings") {
        None => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(other) => return Err(body::wrong_type("array", other, "bindings")),
    };
    let stamp = auth0_timestamp(state.clock.now());
    state.store.write(|s| {
        let existing = s.mgmt.bindings.get(&trigger).cloned().unwrap_or_default();
        let mut bindings = Vec::with_capacity(items.len());
        for item in &items {
            let Value::Object(item) = item else {
                return Err(body::wrong_type("object", item, "bindings"));
            };
            let reference = match item.get("ref") {
                Some(Value::Object(r)) => r,
                Some(other) => return Err(body::wrong_type("object", other, "ref")),
                None => {
                    return Err(body::invalid(
                        "'Missing required property: ref' on property bindings.",
                    ));
                }
            };
            let kind = body::string(reference, "type")?.unwrap_or_default();
            let value = body::string(reference, "value")?.unwrap_or_default();
            let display_name = body::string(item, "display_name")?;
            let (action_id, previous) = match kind {
                "action_id" => (value.to_owned(), None),
                "action_name" => (
                    s.mgmt
                        .actions
                        .iter()
                        .find(|a| a.name == value)
                        .map(|a| a.id.clone())
                        .ok_or_else(action_not_found)?,
                    None,
                ),
                "binding_id" => {
                    let binding = existing.iter().find(|b| b.id == value).ok_or_else(|| {
                        MgmtError::not_found("The binding does not exist.", "binding_not_found")
                    })?;
                    (binding.action_id.clone(), Some(binding.clone()))
                }
                other => {
                    return Err(body::invalid(&format!(
                        "'No enum match for: \"{other}\"' on property ref.type."
                    )));
                }
            };
            let action = s
                .mgmt
                .actions
                .iter()
                .find(|a| a.id == action_id)
                .ok_or_else(action_not_found)?;
            if action.versions.is_empty() {
                return Err(MgmtError::bad_request(
                    format!("The action '{}' has not been deployed.", action.name),
                    "action_not_deployed",
                ));
            }
            let binding = match previous {
                Some(mut previous) => {
                    if let Some(name) = display_name {
                        name.clone_into(&mut previous.display_name);
                    }
                    previous
                }
                None => StoredBinding {
                    id: uuid::Uuid::new_v4().to_string(),
                    action_id,
                    display_name: display_name.map_or_else(|| action.name.clone(), str::to_owned),
                    created_at: stamp.clone(),
                    updated_at: stamp.clone(),
                },
            };
            bindings.push(binding);
        }
        s.mgmt.bindings.insert(trigger.clone(), bindings);
        Ok(())
    })?;
    Ok(Json(json!({"bindings": served_bindings(&state, &trigger)})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_advances_per_read_or_with_time() {
        let mut action = StoredAction {
            id: "a".to_owned(),
            name: "n".to_owned(),
            supported_triggers: json!([]),
            code: String::new(),
            runtime: "node22".to_owned(),
            dependencies: json!([]),
            secrets: Vec::new(),
            created_at: String::new(),
            updated_at: String::new(),
            updated_unix: 100,
            reads_since_update: 0,
            versions: Vec::new(),
            all_changes_deployed: false,
        };
        assert_eq!(status_of(&action, 100), "pending");
        action.reads_since_update = 1;
        assert_eq!(status_of(&action, 100), "building");
        action.reads_since_update = 2;
        assert_eq!(status_of(&action, 100), "built");
        action.reads_since_update = 0;
        assert_eq!(
            status_of(&action, 102),
            "built",
            "built two seconds after the change"
        );
    }
}
