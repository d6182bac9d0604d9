//! Golden Auth0 fixtures (see `tests/fixtures/README.md` for each file's provenance), compiled in with
//! `include_str!` so other crates' tests can compare their own responses with the same shapes.
//!
//! Enable with the `fixtures` feature in `[dev-dependencies]` only. [`shape_mismatches`] compares a response with a
//! fixture by shape (member names and JSON types), since ids, dates and tokens differ between tenants.

use serde_json::Value;

/// The fixture directory in the source tree, for tools that want the files themselves.
pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// `guardian_factor_put_response.json`.
pub const GUARDIAN_FACTOR_PUT_RESPONSE: &str =
    include_str!("../tests/fixtures/guardian_factor_put_response.json");
/// `guardian_factors_list.json`.
pub const GUARDIAN_FACTORS_LIST: &str =
    include_str!("../tests/fixtures/guardian_factors_list.json");
/// `guardian_policies_all_applications.json`.
pub const GUARDIAN_POLICIES_ALL_APPLICATIONS: &str =
    include_str!("../tests/fixtures/guardian_policies_all_applications.json");
/// `guardian_policies_empty.json`.
pub const GUARDIAN_POLICIES_EMPTY: &str =
    include_str!("../tests/fixtures/guardian_policies_empty.json");
/// `guardian_ticket_request.json`.
pub const GUARDIAN_TICKET_REQUEST: &str =
    include_str!("../tests/fixtures/guardian_ticket_request.json");
/// `guardian_ticket_response.json`.
pub const GUARDIAN_TICKET_RESPONSE: &str =
    include_str!("../tests/fixtures/guardian_ticket_response.json");
/// `jwks_auth0.json`.
pub const JWKS_AUTH0: &str = include_str!("../tests/fixtures/jwks_auth0.json");
/// `mfa_authenticators_list.json`.
pub const MFA_AUTHENTICATORS_LIST: &str =
    include_str!("../tests/fixtures/mfa_authenticators_list.json");
/// `mgmt_error_conflict_no_error_code.json`.
pub const MGMT_ERROR_CONFLICT_NO_ERROR_CODE: &str =
    include_str!("../tests/fixtures/mgmt_error_conflict_no_error_code.json");
/// `mgmt_error_enrollment_not_found.json`.
pub const MGMT_ERROR_ENROLLMENT_NOT_FOUND: &str =
    include_str!("../tests/fixtures/mgmt_error_enrollment_not_found.json");
/// `mgmt_error_inexistent_user.json`.
pub const MGMT_ERROR_INEXISTENT_USER: &str =
    include_str!("../tests/fixtures/mgmt_error_inexistent_user.json");
/// `mgmt_error_insufficient_scope.json`.
pub const MGMT_ERROR_INSUFFICIENT_SCOPE: &str =
    include_str!("../tests/fixtures/mgmt_error_insufficient_scope.json");
/// `mgmt_method_create_webauthn_roaming_doc.json`.
pub const MGMT_METHOD_CREATE_WEBAUTHN_ROAMING_DOC: &str =
    include_str!("../tests/fixtures/mgmt_method_create_webauthn_roaming_doc.json");
/// `mgmt_method_get_email.json`.
pub const MGMT_METHOD_GET_EMAIL: &str =
    include_str!("../tests/fixtures/mgmt_method_get_email.json");
/// `mgmt_method_get_phone.json`.
pub const MGMT_METHOD_GET_PHONE: &str =
    include_str!("../tests/fixtures/mgmt_method_get_phone.json");
/// `mgmt_method_patch_email.json`.
pub const MGMT_METHOD_PATCH_EMAIL: &str =
    include_str!("../tests/fixtures/mgmt_method_patch_email.json");
/// `mgmt_method_post_email.json`.
pub const MGMT_METHOD_POST_EMAIL: &str =
    include_str!("../tests/fixtures/mgmt_method_post_email.json");
/// `mgmt_methods_list_bare_doc.json`.
pub const MGMT_METHODS_LIST_BARE_DOC: &str =
    include_str!("../tests/fixtures/mgmt_methods_list_bare_doc.json");
/// `mgmt_methods_list_paged.json`.
pub const MGMT_METHODS_LIST_PAGED: &str =
    include_str!("../tests/fixtures/mgmt_methods_list_paged.json");
/// `mgmt_methods_list_paged_empty.json`.
pub const MGMT_METHODS_LIST_PAGED_EMPTY: &str =
    include_str!("../tests/fixtures/mgmt_methods_list_paged_empty.json");
/// `oauth_error_invalid_grant.json`.
pub const OAUTH_ERROR_INVALID_GRANT: &str =
    include_str!("../tests/fixtures/oauth_error_invalid_grant.json");
/// `oauth_error_mfa_required.json`.
pub const OAUTH_ERROR_MFA_REQUIRED: &str =
    include_str!("../tests/fixtures/oauth_error_mfa_required.json");
/// `oidc_discovery_auth0.json`.
pub const OIDC_DISCOVERY_AUTH0: &str = include_str!("../tests/fixtures/oidc_discovery_auth0.json");
/// `oidc_discovery_auth0_minimal.json`.
pub const OIDC_DISCOVERY_AUTH0_MINIMAL: &str =
    include_str!("../tests/fixtures/oidc_discovery_auth0_minimal.json");
/// `passkey_method_auth0_swift.json`.
pub const PASSKEY_METHOD_AUTH0_SWIFT: &str =
    include_str!("../tests/fixtures/passkey_method_auth0_swift.json");
/// `passkey_method_myaccount_spec.json`.
pub const PASSKEY_METHOD_MYACCOUNT_SPEC: &str =
    include_str!("../tests/fixtures/passkey_method_myaccount_spec.json");
/// `spec_schemas.json`.
pub const SPEC_SCHEMAS: &str = include_str!("../tests/fixtures/spec_schemas.json");
/// `token_client_credentials_doc.json`.
pub const TOKEN_CLIENT_CREDENTIALS_DOC: &str =
    include_str!("../tests/fixtures/token_client_credentials_doc.json");
/// `token_client_credentials_recorded.json`.
pub const TOKEN_CLIENT_CREDENTIALS_RECORDED: &str =
    include_str!("../tests/fixtures/token_client_credentials_recorded.json");
/// `webauthn_platform_settings_get.json`.
pub const WEBAUTHN_PLATFORM_SETTINGS_GET: &str =
    include_str!("../tests/fixtures/webauthn_platform_settings_get.json");
/// `webauthn_roaming_settings_get.json`.
pub const WEBAUTHN_ROAMING_SETTINGS_GET: &str =
    include_str!("../tests/fixtures/webauthn_roaming_settings_get.json");
/// `webauthn_roaming_settings_put_response.json`.
pub const WEBAUTHN_ROAMING_SETTINGS_PUT_RESPONSE: &str =
    include_str!("../tests/fixtures/webauthn_roaming_settings_put_response.json");

/// Every fixture as `(file name, contents)`.
pub const ALL: [(&str, &str); 32] = [
    (
        "guardian_factor_put_response.json",
        GUARDIAN_FACTOR_PUT_RESPONSE,
    ),
    ("guardian_factors_list.json", GUARDIAN_FACTORS_LIST),
    (
        "guardian_policies_all_applications.json",
        GUARDIAN_POLICIES_ALL_APPLICATIONS,
    ),
    ("guardian_policies_empty.json", GUARDIAN_POLICIES_EMPTY),
    ("guardian_ticket_request.json", GUARDIAN_TICKET_REQUEST),
    ("guardian_ticket_response.json", GUARDIAN_TICKET_RESPONSE),
    ("jwks_auth0.json", JWKS_AUTH0),
    ("mfa_authenticators_list.json", MFA_AUTHENTICATORS_LIST),
    (
        "mgmt_error_conflict_no_error_code.json",
        MGMT_ERROR_CONFLICT_NO_ERROR_CODE,
    ),
    (
        "mgmt_error_enrollment_not_found.json",
        MGMT_ERROR_ENROLLMENT_NOT_FOUND,
    ),
    (
        "mgmt_error_inexistent_user.json",
        MGMT_ERROR_INEXISTENT_USER,
    ),
    (
        "mgmt_error_insufficient_scope.json",
        MGMT_ERROR_INSUFFICIENT_SCOPE,
    ),
    (
        "mgmt_method_create_webauthn_roaming_doc.json",
        MGMT_METHOD_CREATE_WEBAUTHN_ROAMING_DOC,
    ),
    ("mgmt_method_get_email.json", MGMT_METHOD_GET_EMAIL),
    ("mgmt_method_get_phone.json", MGMT_METHOD_GET_PHONE),
    ("mgmt_method_patch_email.json", MGMT_METHOD_PATCH_EMAIL),
    ("mgmt_method_post_email.json", MGMT_METHOD_POST_EMAIL),
    (
        "mgmt_methods_list_bare_doc.json",
        MGMT_METHODS_LIST_BARE_DOC,
    ),
    ("mgmt_methods_list_paged.json", MGMT_METHODS_LIST_PAGED),
    (
        "mgmt_methods_list_paged_empty.json",
        MGMT_METHODS_LIST_PAGED_EMPTY,
    ),
    ("oauth_error_invalid_grant.json", OAUTH_ERROR_INVALID_GRANT),
    ("oauth_error_mfa_required.json", OAUTH_ERROR_MFA_REQUIRED),
    ("oidc_discovery_auth0.json", OIDC_DISCOVERY_AUTH0),
    (
        "oidc_discovery_auth0_minimal.json",
        OIDC_DISCOVERY_AUTH0_MINIMAL,
    ),
    (
        "passkey_method_auth0_swift.json",
        PASSKEY_METHOD_AUTH0_SWIFT,
    ),
    (
        "passkey_method_myaccount_spec.json",
        PASSKEY_METHOD_MYACCOUNT_SPEC,
    ),
    ("spec_schemas.json", SPEC_SCHEMAS),
    (
        "token_client_credentials_doc.json",
        TOKEN_CLIENT_CREDENTIALS_DOC,
    ),
    (
        "token_client_credentials_recorded.json",
        TOKEN_CLIENT_CREDENTIALS_RECORDED,
    ),
    (
        "webauthn_platform_settings_get.json",
        WEBAUTHN_PLATFORM_SETTINGS_GET,
    ),
    (
        "webauthn_roaming_settings_get.json",
        WEBAUTHN_ROAMING_SETTINGS_GET,
    ),
    (
        "webauthn_roaming_settings_put_response.json",
        WEBAUTHN_ROAMING_SETTINGS_PUT_RESPONSE,
    ),
];

/// Looks a fixture up by file name.
pub fn get(file_name: &str) -> Option<&'static str> {
    ALL.iter()
        .find(|(name, _)| *name == file_name)
        .map(|(_, contents)| *contents)
}

/// Differences in shape between `expected` (a fixture) and `actual`, as human-readable paths; empty when they match.
///
/// Objects must have the same member names and each member the same JSON type (recursively). Members listed in
/// `optional` (names, at any depth) may be absent from either side. Arrays are compared element-wise against the
/// fixture's first element, so lists of any length match. Values are not compared.
pub fn shape_mismatches(expected: &Value, actual: &Value, optional: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    compare(expected, actual, optional, "$", &mut out);
    out
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn compare(expected: &Value, actual: &Value, optional: &[&str], path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, e_value) in e {
                match a.get(key) {
                    Some(a_value) => {
                        compare(e_value, a_value, optional, &format!("{path}.{key}"), out)
                    }
                    None if optional.contains(&key.as_str()) => {}
                    None => out.push(format!("{path}.{key}: missing")),
                }
            }
            for key in a.keys() {
                if !e.contains_key(key) && !optional.contains(&key.as_str()) {
                    out.push(format!("{path}.{key}: not in the fixture"));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let Some(template) = e.first() {
                for (index, item) in a.iter().enumerate() {
                    compare(template, item, optional, &format!("{path}[{index}]"), out);
                }
            }
        }
        (e, a) if kind(e) != kind(a) => {
            out.push(format!("{path}: expected {}, got {}", kind(e), kind(a)));
        }
        _ => {}
    }
}
