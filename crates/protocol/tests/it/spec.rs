//! Auth0's OpenAPI schemas as test data (excerpt in `fixtures/spec_schemas.json`): every property the spec names is
//! a field of our type under the same name, required fields are required, and every enum value is known.

use std::collections::BTreeSet;

use companion_protocol::api::EnrollmentType;
use companion_protocol::auth0::{
    AuthenticationMethod, AuthenticationMethodsPage, EnrollmentTicket, EnrollmentTicketRequest,
    GuardianFactor, GuardianFactorName, GuardianFactorUpdate, MethodType, MfaPolicy,
    OAuthErrorBody, TicketFactor, TokenResponse, UpdateAuthenticationMethod,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::support::{fixture_value, keys, to_value};

/// Which spec a schema lives in.
#[derive(Clone, Copy)]
enum Spec {
    Management,
    Authentication,
}

fn schemas(spec: Spec) -> Value {
    let all = fixture_value("spec_schemas.json");
    let key = match spec {
        Spec::Management => "management",
        Spec::Authentication => "authentication",
    };
    all[key]["components"]["schemas"].clone()
}

fn schema(spec: Spec, name: &str) -> Value {
    let schema = schemas(spec)[name].clone();
    assert!(
        schema.is_object(),
        "schema {name} missing from spec_schemas.json"
    );
    schema
}

/// A value that satisfies `schema` (first enum value, first `oneOf` branch, every object property).
fn sample(spec: Spec, schema: &Value) -> Value {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference
            .rsplit('/')
            .next()
            .expect("a $ref has a last segment");
        return sample(spec, &self::schema(spec, name));
    }
    if let Some(first) = schema.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    if let Some(first) = schema.get("oneOf").and_then(|o| o.get(0)) {
        return sample(spec, first);
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => json!("2026-01-01T00:00:00.000Z"),
            Some("user-id") => json!("auth0|68998c2d684ac37fcd52bfbe"),
            Some("email") => json!("jon@example.com"),
            Some("authenticator-id") => json!("sms|dev_kXVq4drj3Mw6uCF5"),
            _ => json!("sample"),
        },
        Some("boolean") => json!(true),
        Some("number" | "integer") => json!(7),
        Some("array") => json!([sample(spec, &schema["items"])]),
        Some("object") | None => {
            let properties = schema
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            Value::Object(
                properties
                    .iter()
                    .map(|(k, v)| (k.clone(), sample(spec, v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Some(other) => panic!("unexpected schema type {other}"),
    }
}

fn property_names(schema: &Value) -> BTreeSet<String> {
    schema["properties"]
        .as_object()
        .expect("object schema has properties")
        .keys()
        .cloned()
        .collect()
}

fn required_names(schema: &Value) -> BTreeSet<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Checks that `T` has exactly the spec's properties under the spec's names, and the spec's required set.
/// `stricter` lists properties the spec leaves optional but our type requires (each one documented at the call).
fn assert_type_matches_schema<T: DeserializeOwned + Serialize>(
    spec: Spec,
    name: &str,
    stricter: &[&str],
) {
    let type_name = std::any::type_name::<T>();
    let schema = schema(spec, name);
    let full = sample(spec, &schema);
    let parsed: T = serde_json::from_value(full.clone()).unwrap_or_else(|e| {
        panic!("{type_name} must read a {name} with every property: {e}\n{full}")
    });
    assert_eq!(
        keys(&to_value(&parsed)),
        property_names(&schema),
        "{type_name} must write exactly {name}'s property names"
    );
    let required = required_names(&schema);
    for property in property_names(&schema) {
        let mut without = full.clone();
        without
            .as_object_mut()
            .expect("object sample")
            .remove(&property);
        let result = serde_json::from_value::<T>(without);
        if required.contains(&property) || stricter.contains(&property.as_str()) {
            assert!(
                result.is_err(),
                "{type_name}: {name}.{property} is required and must be enforced"
            );
        } else {
            assert!(
                result.is_ok(),
                "{type_name}: {name}.{property} is optional and may be absent"
            );
        }
    }
}

fn enum_values(spec: Spec, name: &str) -> BTreeSet<String> {
    schema(spec, name)["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{name} is an enum"))
        .iter()
        .map(|v| v.as_str().expect("string enum").to_owned())
        .collect()
}

#[test]
fn authentication_method_has_every_spec_property() {
    assert_type_matches_schema::<AuthenticationMethod>(
        Spec::Management,
        "UserAuthenticationMethod",
        &[],
    );
}

#[test]
fn list_page_has_every_spec_property() {
    // `authenticators` is what tells the paged shape from the bare array, so we require it.
    assert_type_matches_schema::<AuthenticationMethodsPage>(
        Spec::Management,
        "ListUserAuthenticationMethodsOffsetPaginatedResponseContent",
        &["authenticators"],
    );
}

#[test]
fn request_bodies_have_exactly_the_spec_properties() {
    assert_type_matches_schema::<UpdateAuthenticationMethod>(
        Spec::Management,
        "UpdateUserAuthenticationMethodRequestContent",
        &[],
    );
    assert_type_matches_schema::<EnrollmentTicketRequest>(
        Spec::Management,
        "CreateGuardianEnrollmentTicketRequestContent",
        &[],
    );
    assert_type_matches_schema::<GuardianFactorUpdate>(
        Spec::Management,
        "SetGuardianFactorRequestContent",
        &[],
    );
    assert_type_matches_schema::<GuardianFactorUpdate>(
        Spec::Management,
        "SetGuardianFactorResponseContent",
        &[],
    );
}

#[test]
fn guardian_responses_have_every_spec_property() {
    // A ticket without its id or URL is useless to us, and a factor entry without a name cannot be matched.
    assert_type_matches_schema::<EnrollmentTicket>(
        Spec::Management,
        "CreateGuardianEnrollmentTicketResponseContent",
        &["ticket_id", "ticket_url"],
    );
    assert_type_matches_schema::<GuardianFactor>(Spec::Management, "GuardianFactor", &["name"]);
}

#[test]
fn authentication_api_bodies_have_every_spec_property() {
    assert_type_matches_schema::<TokenResponse>(Spec::Authentication, "TokenResponse", &[]);
    assert_type_matches_schema::<OAuthErrorBody>(Spec::Authentication, "ErrorResponse", &[]);
}

#[test]
fn every_method_type_in_the_spec_is_known_and_round_trips() {
    let spec = enum_values(Spec::Management, "AuthenticationMethodTypeEnum");
    for value in &spec {
        let kind = MethodType::from(value.as_str());
        assert!(
            !matches!(kind, MethodType::Unknown(_)),
            "spec type {value} must map to a known MethodType"
        );
        assert_eq!(
            kind.as_str(),
            value,
            "{value} must serialize back to the spec spelling"
        );
    }
    let ours: BTreeSet<String> = MethodType::KNOWN
        .iter()
        .map(|k| k.as_str().to_owned())
        .collect();
    assert_eq!(
        ours, spec,
        "MethodType::KNOWN must be exactly the spec enum"
    );
}

#[test]
fn every_guardian_enum_in_the_spec_is_known() {
    let factors = enum_values(Spec::Management, "GuardianEnrollmentFactorEnum");
    let ours: BTreeSet<String> = TicketFactor::KNOWN
        .iter()
        .map(|f| f.as_str().to_owned())
        .collect();
    assert_eq!(
        ours, factors,
        "TicketFactor::KNOWN must be exactly GuardianEnrollmentFactorEnum"
    );
    assert!(
        factors
            .iter()
            .all(|f| TicketFactor::from(f.as_str()).is_known())
    );

    let names = enum_values(Spec::Management, "GuardianFactorNameEnum");
    let ours: BTreeSet<String> = GuardianFactorName::KNOWN
        .iter()
        .map(|f| f.as_str().to_owned())
        .collect();
    assert_eq!(
        ours, names,
        "GuardianFactorName::KNOWN must be exactly GuardianFactorNameEnum"
    );

    let policies = enum_values(Spec::Management, "MFAPolicyEnum");
    let ours: BTreeSet<String> = MfaPolicy::KNOWN
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    assert_eq!(
        ours, policies,
        "MfaPolicy::KNOWN must be exactly MFAPolicyEnum"
    );
}

#[test]
fn proxy_enrollment_types_are_valid_auth0_ticket_factors_and_method_types() {
    let factors = enum_values(Spec::Management, "GuardianEnrollmentFactorEnum");
    let types = enum_values(Spec::Management, "AuthenticationMethodTypeEnum");
    for kind in EnrollmentType::ALL {
        assert!(
            factors.contains(kind.ticket_factor().as_str()),
            "{kind} must be a ticket factor"
        );
        assert!(
            types.contains(kind.method_type().as_str()),
            "{kind} must be a Management method type"
        );
    }
}

#[test]
fn token_type_is_the_spec_value() {
    let token = schema(Spec::Authentication, "TokenResponse");
    assert_eq!(token["properties"]["token_type"]["enum"], json!(["Bearer"]));
}
