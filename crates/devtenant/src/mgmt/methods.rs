//! `/api/v2/users/{id}/authentication-methods[/{authentication_method_id}]`: list (both shapes, paginated), get,
//! patch (`name`, `preferred_authentication_method`), delete one, delete all.
//!
//! Ids arrive percent-encoded (`auth0%7C...`, `totp%7Cdev_...`) or with a literal `|`; axum matches the route on the
//! raw path and decodes each segment afterwards, so an encoded `%2F` stays inside its segment and simply names no
//! user or method. Email addresses and phone numbers are masked in every response, as Auth0 does.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use companion_protocol::auth0::{AuthenticationMethod, AuthenticationMethodsPage, MethodType};

use super::auth::Caller;
use super::body;
use crate::AppState;
use crate::error::MgmtError;
use crate::store::TenantState;

/// `read:authentication_methods`.
pub const READ: &str = "read:authentication_methods";
/// `update:authentication_methods`.
pub const UPDATE: &str = "update:authentication_methods";
/// `delete:authentication_methods`.
pub const DELETE: &str = "delete:authentication_methods";

/// Longest method name Auth0 accepts.
pub const MAX_NAME_CHARS: usize = 20;
/// Default `per_page`.
pub const DEFAULT_PER_PAGE: u64 = 50;
/// Largest `per_page` the spec allows.
pub const MAX_PER_PAGE: u64 = 100;

/// Auth0's 404 for an unknown user (recorded).
pub fn inexistent_user() -> MgmtError {
    MgmtError::not_found("The user does not exist.", "inexistent_user")
}

/// The 404 for an unknown method of an existing user.
///
/// The status is Auth0's; the message and `errorCode` text are **[unverified]** (no recording has one).
pub fn method_not_found() -> MgmtError {
    MgmtError::not_found(
        "Authentication method not found",
        "authentication_method_not_found",
    )
}

/// A path that axum could not decode (e.g. invalid UTF-8 after percent-decoding).
pub(crate) fn bad_path(_: &PathRejection) -> MgmtError {
    MgmtError::bad_request(
        "Path validation error: invalid path parameter",
        "invalid_uri",
    )
}

/// Masks one part of an email: keeps the first half (at most 4 characters), stars the rest.
fn mask_part(part: &str) -> String {
    let len = part.chars().count();
    let keep = len.div_ceil(2).min(4);
    part.chars()
        .enumerate()
        .map(|(i, c)| if i < keep { c } else { '*' })
        .collect()
}

/// Masks an email as Auth0 does in Management responses: `chuck334@example.com` → `chuc****@exam*******`.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => format!("{}@{}", mask_part(local), mask_part(domain)),
        None => mask_part(email),
    }
}

/// Masks a phone number as Auth0 does: every character but the last four becomes `X` (`XXXXXXXXXXX5044`).
pub fn mask_phone(phone: &str) -> String {
    let len = phone.chars().count();
    phone
        .chars()
        .enumerate()
        .map(|(i, c)| if i + 4 < len { 'X' } else { c })
        .collect()
}

/// A stored method as the GET endpoints show it: email and phone masked.
pub fn served(method: &AuthenticationMethod) -> AuthenticationMethod {
    let mut out = method.clone();
    out.email = out.email.as_deref().map(mask_email);
    out.phone_number = out.phone_number.as_deref().map(mask_phone);
    out
}

/// Query of the list endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery {
    /// Page index, from 0.
    pub page: u64,
    /// Page size, 0..=100.
    pub per_page: u64,
    /// Whether to answer `{start, limit, total, authenticators}` instead of a bare array.
    pub include_totals: bool,
}

fn invalid_query(detail: &str) -> MgmtError {
    MgmtError::bad_request(
        format!("Query validation error: {detail}"),
        "invalid_query_string",
    )
}

fn query_integer(key: &str, value: &str, max: Option<u64>) -> Result<u64, MgmtError> {
    let n: i128 = value.parse().map_err(|_| {
        invalid_query(&format!(
            "'Expected type integer but found type string' on property {key}."
        ))
    })?;
    if n < 0 {
        return Err(invalid_query(&format!(
            "'Value {n} is less than minimum 0' on property {key}."
        )));
    }
    let n = u64::try_from(n)
        .map_err(|_| invalid_query(&format!("'Value {n} is too large' on property {key}.")))?;
    if let Some(max) = max.filter(|max| n > *max) {
        return Err(invalid_query(&format!(
            "'Value {n} is greater than maximum {max}' on property {key}."
        )));
    }
    Ok(n)
}

impl ListQuery {
    /// Parses the raw query string with the spec's bounds; unknown parameters are ignored.
    ///
    /// # Errors
    /// 400 `invalid_query_string` for a value out of range or of the wrong type.
    pub fn parse(raw: Option<&str>) -> Result<Self, MgmtError> {
        let mut query = Self {
            page: 0,
            per_page: DEFAULT_PER_PAGE,
            include_totals: false,
        };
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match &*key {
                "page" => query.page = query_integer("page", &value, None)?,
                "per_page" => {
                    query.per_page = query_integer("per_page", &value, Some(MAX_PER_PAGE))?
                }
                "include_totals" => {
                    query.include_totals = match &*value {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(invalid_query(
                                "'Expected type boolean but found type string' on property include_totals.",
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(query)
    }
}

/// `GET /api/v2/users/{id}/authentication-methods`.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, MgmtError> {
    caller.require(&[READ])?;
    let Path(user_id) = path.map_err(|e| bad_path(&e))?;
    let query = ListQuery::parse(raw.as_deref())?;
    let methods: Vec<AuthenticationMethod> = state
        .store
        .read(|s| {
            s.user(&user_id)
                .map(|u| u.methods.iter().map(|m| served(&m.method)).collect())
        })
        .ok_or_else(inexistent_user)?;
    let total = methods.len() as u64;
    let start = query.page.saturating_mul(query.per_page);
    let page: Vec<AuthenticationMethod> = methods
        .into_iter()
        .skip(usize::try_from(start).unwrap_or(usize::MAX))
        .take(usize::try_from(query.per_page).unwrap_or(usize::MAX))
        .collect();
    Ok(if query.include_totals {
        Json(AuthenticationMethodsPage {
            start,
            limit: query.per_page,
            // Auth0 omits `total` when the user has no methods (recorded).
            total: (total > 0).then_some(total),
            authenticators: page,
        })
        .into_response()
    } else {
        Json(page).into_response()
    })
}

fn find_method(
    s: &TenantState,
    user_id: &str,
    method_id: &str,
) -> Result<AuthenticationMethod, MgmtError> {
    let user = s.user(user_id).ok_or_else(inexistent_user)?;
    user.methods
        .iter()
        .find(|m| m.method.id == method_id)
        .map(|m| m.method.clone())
        .ok_or_else(method_not_found)
}

/// `GET /api/v2/users/{id}/authentication-methods/{authentication_method_id}`.
pub async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<AuthenticationMethod>, MgmtError> {
    caller.require(&[READ])?;
    let Path((user_id, method_id)) = path.map_err(|e| bad_path(&e))?;
    let method = state.store.read(|s| find_method(s, &user_id, &method_id))?;
    Ok(Json(served(&method)))
}

/// The validated body of a PATCH.
#[derive(Debug, Default)]
struct Patch {
    name: Option<String>,
    preferred: Option<String>,
}

fn parse_patch(bytes: &[u8]) -> Result<Patch, MgmtError> {
    let map = body::object(bytes, &["name", "preferred_authentication_method"], &[])?;
    let name = body::string(&map, "name")?;
    if let Some(name) = name {
        let chars = name.chars().count();
        if chars > MAX_NAME_CHARS {
            return Err(body::invalid(&format!(
                "'String is too long ({chars} chars), maximum {MAX_NAME_CHARS}' on property name (A human-readable label to identify the authentication method)."
            )));
        }
    }
    let preferred = body::string(&map, "preferred_authentication_method")?;
    if let Some(p) = preferred.filter(|p| !matches!(*p, "sms" | "voice")) {
        return Err(body::invalid(&format!(
            "'No enum match for: \"{p}\"' on property preferred_authentication_method."
        )));
    }
    Ok(Patch {
        name: name.map(str::to_owned),
        preferred: preferred.map(str::to_owned),
    })
}

/// `PATCH /api/v2/users/{id}/authentication-methods/{authentication_method_id}`: body `{name?,
/// preferred_authentication_method?}` only; answers the method without `confirmed`, as recorded.
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<(String, String)>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<AuthenticationMethod>, MgmtError> {
    caller.require(&[UPDATE])?;
    let Path((user_id, method_id)) = path.map_err(|e| bad_path(&e))?;
    let patch = parse_patch(&bytes)?;
    let method = state.store.write(|s| {
        let user = s.user_mut(&user_id).ok_or_else(inexistent_user)?;
        let stored = user
            .methods
            .iter_mut()
            .find(|m| m.method.id == method_id)
            .ok_or_else(method_not_found)?;
        if patch.preferred.is_some() && stored.method.kind != MethodType::Phone {
            return Err(body::invalid(
                "'preferred_authentication_method is only valid for phone authentication methods'.",
            ));
        }
        if let Some(name) = &patch.name {
            stored.method.name = Some(name.clone());
        }
        if let Some(preferred) = &patch.preferred {
            stored.method.preferred_authentication_method = Some(preferred.clone());
        }
        Ok(stored.method.clone())
    })?;
    let mut out = served(&method);
    out.confirmed = None;
    Ok(Json(out))
}

/// `DELETE /api/v2/users/{id}/authentication-methods/{authentication_method_id}` → 204; methods sharing its
/// `link_id` go with it, as Auth0 documents.
pub async fn delete_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, MgmtError> {
    caller.require(&[DELETE])?;
    let Path((user_id, method_id)) = path.map_err(|e| bad_path(&e))?;
    state.store.write(|s| {
        let user = s.user_mut(&user_id).ok_or_else(inexistent_user)?;
        let target = user
            .methods
            .iter()
            .find(|m| m.method.id == method_id)
            .ok_or_else(method_not_found)?;
        let link = target.method.link_id.clone();
        user.methods.retain(|m| {
            m.method.id != method_id
                && (link.is_none() || m.method.link_id.as_deref() != link.as_deref())
        });
        Ok::<_, MgmtError>(())
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v2/users/{id}/authentication-methods` → 204: removes every method of the user.
pub async fn delete_all(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, MgmtError> {
    caller.require(&[DELETE])?;
    let Path(user_id) = path.map_err(|e| bad_path(&e))?;
    state.store.write(|s| {
        let user = s.user_mut(&user_id).ok_or_else(inexistent_user)?;
        user.methods.clear();
        Ok::<_, MgmtError>(())
    })?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_phones_are_masked_like_the_recordings() {
        assert_eq!(mask_email("chuck334@example.com"), "chuc****@exam*******");
        assert_eq!(mask_email("al@x.io"), "a*@x.**");
        assert_eq!(mask_phone("+44 (0) 7712 345044"), "XXXXXXXXXXXXXXX5044");
        assert_eq!(mask_phone("+123456785044").len(), "+123456785044".len());
        assert!(mask_phone("+123456785044").ends_with("5044"));
    }

    #[test]
    fn list_queries_follow_the_spec_bounds() {
        assert_eq!(
            ListQuery::parse(None).expect("defaults"),
            ListQuery {
                page: 0,
                per_page: 50,
                include_totals: false
            }
        );
        assert_eq!(
            ListQuery::parse(Some("page=2&per_page=100&include_totals=true&x=y")).expect("valid"),
            ListQuery {
                page: 2,
                per_page: 100,
                include_totals: true
            }
        );
        for bad in [
            "page=-1",
            "per_page=101",
            "per_page=abc",
            "include_totals=yes",
            "page=1.5",
        ] {
            let error = ListQuery::parse(Some(bad)).expect_err(bad);
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(error.error_code, Some("invalid_query_string"), "{bad}");
        }
    }

    #[test]
    fn patch_bodies_allow_only_name_and_preferred_method() {
        assert!(parse_patch(br#"{"name":"Work key"}"#).is_ok());
        assert!(
            parse_patch(br#"{"name":"12345678901234567890"}"#).is_ok(),
            "20 is fine"
        );
        let long = parse_patch(br#"{"name":"123456789012345678901"}"#).expect_err("21 chars");
        assert!(
            long.message
                .contains("String is too long (21 chars), maximum 20")
        );
        assert!(parse_patch(br#"{"confirmed":true}"#).is_err());
        assert!(parse_patch(br#"{"name":5}"#).is_err());
        assert!(parse_patch(br#"{"preferred_authentication_method":"fax"}"#).is_err());
    }
}
