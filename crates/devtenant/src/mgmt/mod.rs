//! The Management API subset under `/api/v2/`: authentication methods, enrollment tickets, guardian factors and
//! policies, resource servers, clients, client grants, Actions and trigger bindings ([`apps`], [`actions`]), with M2M bearer tokens, scope checks, `x-ratelimit-*` headers and an optional token-bucket limit.
//!
//! Every request under `/api/v2/` passes [`gateway`] (called by [`crate::faults::inject`], which wraps the whole
//! router): it takes a token from the bucket (429 when an enforced bucket is empty), authenticates the bearer token
//! (401), hands the [`Caller`] to the handler as a request extension, and sets the `x-ratelimit-*` headers on
//! whatever the answer is. Handlers check their scope with [`Caller::require`].
//!
//! Validation messages follow the z-schema wording Auth0 uses (`Payload validation error: '...'`); the exact text of
//! each is **[unverified]**, the status codes and `errorCode` values follow the spec and the recordings.

pub mod actions;
pub mod apps;
pub mod auth;
pub mod guardian;
pub mod methods;
pub mod objects;
pub mod ratelimit;
pub mod tickets;

use std::sync::Mutex;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, patch, post, put};
use time::OffsetDateTime;

pub use self::auth::Caller;
use self::ratelimit::{Decision, TokenBucket};
use crate::AppState;
use crate::config::RateLimit;
use crate::error::MgmtError;

/// The path prefix of the Management API.
pub const PREFIX: &str = "/api/v2";

/// Management API state: the optional rate limiter.
#[derive(Debug)]
pub struct MgmtState {
    /// The configured limit, if any.
    pub limit: Option<RateLimit>,
    bucket: Mutex<TokenBucket>,
    webauthn: Mutex<guardian::WebAuthnSettings>,
}

impl MgmtState {
    /// State with an optional limit; without one, the headers describe a bucket that never refuses.
    pub fn new(limit: Option<RateLimit>) -> Self {
        let bucket = match limit {
            Some(limit) => TokenBucket::new(limit, true),
            None => TokenBucket::new(ratelimit::UNENFORCED_DEFAULT, false),
        };
        Self {
            limit,
            bucket: Mutex::new(bucket),
            webauthn: Mutex::new(guardian::WebAuthnSettings::default()),
        }
    }

    /// Runs `f` on the WebAuthn factors' settings.
    pub fn with_webauthn_settings<R>(
        &self,
        f: impl FnOnce(&mut guardian::WebAuthnSettings) -> R,
    ) -> R {
        let mut settings = self
            .webauthn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut settings)
    }

    fn with_bucket<R>(&self, f: impl FnOnce(&mut TokenBucket) -> R) -> R {
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut bucket)
    }

    /// Takes one request's token at `now`.
    pub fn take(&self, now: OffsetDateTime) -> Decision {
        self.with_bucket(|b| b.take(now))
    }

    /// The bucket's state at `now`, without taking a token (for injected 429s).
    pub fn peek(&self, now: OffsetDateTime) -> Decision {
        self.with_bucket(|b| b.peek(now))
    }
}

/// Whether `path` is under the Management API.
pub fn is_mgmt_path(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Rate limit, authentication and `x-ratelimit-*` headers around every Management API request.
pub async fn gateway(state: &AppState, mut request: Request, next: Next) -> Response {
    let decision = state.mgmt.take(state.clock.now());
    let mut response = if decision.allowed {
        match auth::authenticate(state, request.headers()) {
            Ok(caller) => {
                request.extensions_mut().insert(caller.clone());
                let mut response = next.run(request).await;
                response.extensions_mut().insert(caller);
                response
            }
            Err(error) => error.into_response(),
        }
    } else {
        MgmtError::too_many_requests().into_response()
    };
    decision.apply(response.headers_mut());
    response
}

/// The Management API routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v2/users/{id}/authentication-methods",
            get(methods::list).delete(methods::delete_all),
        )
        .route(
            "/api/v2/users/{id}/authentication-methods/{method_id}",
            get(methods::get_one)
                .patch(methods::update)
                .delete(methods::delete_one),
        )
        .route("/api/v2/guardian/enrollments/ticket", post(tickets::create))
        .route("/api/v2/guardian/factors", get(guardian::list_factors))
        .route("/api/v2/guardian/factors/{name}", put(guardian::set_factor))
        .route(
            "/api/v2/guardian/factors/{name}/settings",
            get(guardian::get_webauthn_settings).put(guardian::set_webauthn_settings),
        )
        .route(
            "/api/v2/guardian/policies",
            get(guardian::get_policies).put(guardian::set_policies),
        )
        .route(
            "/api/v2/resource-servers",
            get(apps::list_resource_servers).post(apps::create_resource_server),
        )
        .route(
            "/api/v2/resource-servers/{id}",
            get(apps::get_resource_server).patch(apps::update_resource_server),
        )
        .route(
            "/api/v2/clients",
            get(apps::list_clients).post(apps::create_client),
        )
        .route(
            "/api/v2/clients/{id}",
            get(apps::get_client).patch(apps::update_client),
        )
        .route(
            "/api/v2/client-grants",
            get(apps::list_grants).post(apps::create_grant),
        )
        .route(
            "/api/v2/client-grants/{id}",
            patch(apps::update_grant).delete(apps::delete_grant),
        )
        .route(
            "/api/v2/actions/actions",
            get(actions::list).post(actions::create),
        )
        .route(
            "/api/v2/actions/actions/{id}",
            get(actions::get_one).patch(actions::update),
        )
        .route("/api/v2/actions/actions/{id}/deploy", post(actions::deploy))
        .route(
            "/api/v2/actions/triggers/{trigger}/bindings",
            get(actions::list_bindings).patch(actions::update_bindings),
        )
        .route("/api/v2/{*rest}", any(not_found))
}

/// Any other path under `/api/v2/`.
async fn not_found() -> MgmtError {
    MgmtError::new(StatusCode::NOT_FOUND, "Not Found", None)
}

/// Body validation with Auth0's `invalid_body` errors.
pub(crate) mod body {
    use serde_json::{Map, Value};

    use crate::error::MgmtError;

    /// `invalid_body` with a z-schema style message.
    pub(crate) fn invalid(detail: &str) -> MgmtError {
        MgmtError::bad_request(
            format!("Payload validation error: {detail}"),
            "invalid_body",
        )
    }

    /// The JSON type name z-schema uses.
    pub(crate) fn type_name(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Parses `bytes` as JSON.
    ///
    /// # Errors
    /// 400 `invalid_body` when it is not JSON.
    pub(crate) fn json(bytes: &[u8]) -> Result<Value, MgmtError> {
        serde_json::from_slice(bytes).map_err(|_| {
            MgmtError::bad_request("Invalid request payload JSON format", "invalid_body")
        })
    }

    /// Parses `bytes` as a JSON object whose keys are all in `allowed` and which has every key in `required`.
    ///
    /// # Errors
    /// 400 `invalid_body` naming the first problem.
    pub(crate) fn object(
        bytes: &[u8],
        allowed: &[&str],
        required: &[&str],
    ) -> Result<Map<String, Value>, MgmtError> {
        let value = json(bytes)?;
        let Value::Object(map) = value else {
            return Err(invalid(&format!(
                "'Expected type object but found type {}'.",
                type_name(&value)
            )));
        };
        let extra: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        if !extra.is_empty() {
            return Err(invalid(&format!(
                "'Additional properties not allowed: {}'.",
                extra.join(",")
            )));
        }
        if let Some(missing) = required.iter().find(|k| !map.contains_key(**k)) {
            return Err(invalid(&format!("'Missing required property: {missing}'.")));
        }
        Ok(map)
    }

    /// The string at `key`, if present.
    ///
    /// # Errors
    /// 400 `invalid_body` when present with another type.
    pub(crate) fn string<'a>(
        map: &'a Map<String, Value>,
        key: &str,
    ) -> Result<Option<&'a str>, MgmtError> {
        match map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type("string", other, key)),
        }
    }

    /// The boolean at `key`, if present.
    ///
    /// # Errors
    /// 400 `invalid_body` when present with another type.
    pub(crate) fn boolean(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, MgmtError> {
        match map.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type("boolean", other, key)),
        }
    }

    /// `Expected type <expected> but found type <found>` on `key`.
    pub(crate) fn wrong_type(expected: &str, found: &Value, key: &str) -> MgmtError {
        invalid(&format!(
            "'Expected type {expected} but found type {}' on property {key}.",
            type_name(found)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_api_v2_paths_are_management_paths() {
        assert!(is_mgmt_path("/api/v2/users/x/authentication-methods"));
        assert!(is_mgmt_path("/api/v2"));
        assert!(!is_mgmt_path("/api/v2x/users"));
        assert!(!is_mgmt_path("/oauth/token"));
    }

    #[test]
    fn bodies_are_checked_like_auth0() {
        let ok = body::object(br#"{"name":"x"}"#, &["name"], &[]).expect("valid");
        assert_eq!(body::string(&ok, "name").expect("string"), Some("x"));
        let extra =
            body::object(br#"{"name":"x","foo":1}"#, &["name"], &[]).expect_err("unknown field");
        assert_eq!(extra.error_code, Some("invalid_body"));
        assert!(
            extra
                .message
                .contains("Additional properties not allowed: foo")
        );
        let missing = body::object(b"{}", &["enabled"], &["enabled"]).expect_err("required");
        assert!(
            missing
                .message
                .contains("Missing required property: enabled")
        );
        let garbage = body::object(b"{", &[], &[]).expect_err("not json");
        assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
        let array = body::object(b"[]", &[], &[]).expect_err("not an object");
        assert!(array.message.contains("found type array"));
    }
}
