//! Auth0 adds fields and type strings over time: reading must keep working, and what we know must stay intact.

use companion_protocol::auth0::{
    AuthenticationMethod, AuthenticationMethodsResponse, EnrollmentTicketRequest, GuardianFactor,
    GuardianFactorName, Jwks, MethodType, MfaAuthenticator, MfaAuthenticatorType, MfaPolicy,
    OidcDiscovery, TicketFactor, UpdateAuthenticationMethod, UserVerification,
    WebAuthnFactorSettings,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::support::{fixture_value, parse, to_value};

/// Adds an unknown member to every object in `value` (at any depth).
fn with_unknown_members(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut map: serde_json::Map<String, Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), with_unknown_members(v)))
                .collect();
            map.insert(
                "future_member_2030".into(),
                json!({"nested": [1, "two", null]}),
            );
            Value::Object(map)
        }
        Value::Array(items) => Value::Array(items.iter().map(with_unknown_members).collect()),
        other => other.clone(),
    }
}

fn assert_tolerates_unknown_members<
    T: DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
>(
    fixture: &str,
) {
    let plain: T = parse(fixture);
    let noisy = with_unknown_members(&fixture_value(fixture));
    let parsed: T = serde_json::from_value(noisy)
        .unwrap_or_else(|e| panic!("{fixture} with unknown members must still deserialize: {e}"));
    assert_eq!(
        parsed, plain,
        "{fixture}: unknown members are ignored, known ones kept"
    );
    assert!(
        !to_value(&parsed).to_string().contains("future_member_2030"),
        "{fixture}: unknown members are not re-emitted"
    );
}

#[test]
fn responses_ignore_unknown_members_at_every_depth() {
    assert_tolerates_unknown_members::<AuthenticationMethodsResponse>(
        "mgmt_methods_list_paged.json",
    );
    assert_tolerates_unknown_members::<AuthenticationMethodsResponse>(
        "mgmt_methods_list_bare_doc.json",
    );
    assert_tolerates_unknown_members::<AuthenticationMethod>("mgmt_method_get_phone.json");
    assert_tolerates_unknown_members::<AuthenticationMethod>("passkey_method_auth0_swift.json");
    assert_tolerates_unknown_members::<Vec<GuardianFactor>>("guardian_factors_list.json");
    assert_tolerates_unknown_members::<WebAuthnFactorSettings>(
        "webauthn_roaming_settings_get.json",
    );
    assert_tolerates_unknown_members::<Vec<MfaAuthenticator>>("mfa_authenticators_list.json");
    assert_tolerates_unknown_members::<OidcDiscovery>("oidc_discovery_auth0.json");
    assert_tolerates_unknown_members::<Jwks>("jwks_auth0.json");
    assert_tolerates_unknown_members::<companion_protocol::auth0::EnrollmentTicket>(
        "guardian_ticket_response.json",
    );
    assert_tolerates_unknown_members::<companion_protocol::auth0::MgmtErrorBody>(
        "mgmt_error_inexistent_user.json",
    );
    assert_tolerates_unknown_members::<companion_protocol::auth0::OAuthErrorBody>(
        "oauth_error_invalid_grant.json",
    );
}

#[test]
fn request_bodies_with_additional_properties_false_are_strict() {
    // Auth0 answers 400 to unknown members in these bodies (`additionalProperties: false`); so does the dev tenant.
    let noisy = with_unknown_members(&fixture_value("guardian_ticket_request.json"));
    assert!(
        serde_json::from_value::<EnrollmentTicketRequest>(noisy).is_err(),
        "ticket body is strict"
    );
    assert!(
        serde_json::from_value::<UpdateAuthenticationMethod>(json!({"name": "x", "type": "totp"}))
            .is_err(),
        "PATCH body accepts only name and preferred_authentication_method"
    );
}

#[test]
fn unknown_future_type_strings_pass_through() {
    let body = json!([
        {"id": "magic-ring|dev_AAAAAAAAAAAAAAAA", "type": "magic-ring", "created_at": "2030-01-01T00:00:00.000Z"},
        {"id": "totp|dev_BBBBBBBBBBBBBBBB", "type": "totp", "created_at": "2030-01-01T00:00:00.000Z"}
    ]);
    let methods = serde_json::from_value::<AuthenticationMethodsResponse>(body.clone())
        .expect("an unknown type must not fail the whole list")
        .into_methods();
    assert_eq!(methods[0].kind, MethodType::Unknown("magic-ring".into()));
    assert!(!methods[0].kind.is_webauthn());
    assert_eq!(methods[1].kind, MethodType::Totp);
    assert_eq!(
        to_value(&methods),
        body,
        "unknown types serialize back unchanged"
    );

    assert_eq!(
        TicketFactor::from("carrier-pigeon"),
        TicketFactor::Unknown("carrier-pigeon".into())
    );
    let factors: Vec<GuardianFactor> = serde_json::from_value(
        json!([{"name": "passkey-mfa", "enabled": true, "trial_expired": false}]),
    )
    .unwrap();
    assert_eq!(
        factors[0].factor_name(),
        GuardianFactorName::Unknown("passkey-mfa".into())
    );
    let policies: Vec<MfaPolicy> =
        serde_json::from_value(json!(["all-applications", "risk-based"])).unwrap();
    assert_eq!(
        policies,
        [
            MfaPolicy::AllApplications,
            MfaPolicy::Unknown("risk-based".into())
        ]
    );
    assert_eq!(
        to_value(&policies),
        json!(["all-applications", "risk-based"])
    );
    let settings: WebAuthnFactorSettings =
        serde_json::from_value(json!({"userVerification": "sometimes"})).unwrap();
    assert_eq!(
        settings.user_verification,
        Some(UserVerification::Unknown("sometimes".into()))
    );
    let mfa: MfaAuthenticator = serde_json::from_value(
        json!({"id": "x|dev_1", "authenticator_type": "webauthn", "active": true}),
    )
    .unwrap();
    assert_eq!(
        mfa.authenticator_type,
        MfaAuthenticatorType::Unknown("webauthn".into())
    );
}

#[test]
fn push_notification_reads_as_push_and_writes_as_push() {
    for spelling in ["push", "push-notification"] {
        let method: AuthenticationMethod = serde_json::from_value(json!({
            "id": "push|dev_BBTKYpxKHOXVBnql", "type": spelling, "created_at": "2025-01-01T00:00:00.000Z"
        }))
        .unwrap();
        assert_eq!(method.kind, MethodType::Push, "{spelling} is Guardian push");
        assert_eq!(
            to_value(&method)["type"],
            "push",
            "the Management API spelling is written"
        );
    }
    assert_eq!(
        MethodType::from("webauthn_roaming"),
        MethodType::WebauthnRoaming,
        "doc's underscore spelling"
    );
}

#[test]
fn masked_contact_details_are_kept_verbatim() {
    let email: AuthenticationMethod = parse("mgmt_method_get_email.json");
    assert_eq!(email.email.as_deref(), Some("chuc****@exam*******"));
    let phone: AuthenticationMethod = parse("mgmt_method_get_phone.json");
    assert_eq!(phone.phone_number.as_deref(), Some("XXXXXXXXXXX5044"));
    let linked = phone
        .authentication_methods
        .expect("phone has linked methods");
    assert_eq!(
        (linked[0].id.as_str(), linked[0].kind.as_str()),
        ("sms|dev_kXVq4drj3Mw6uCF5", "sms")
    );
}

#[test]
fn list_without_total_and_patch_without_confirmed() {
    let empty: AuthenticationMethodsResponse = parse("mgmt_methods_list_paged_empty.json");
    match empty {
        AuthenticationMethodsResponse::Paged(page) => {
            assert_eq!(page.total, None, "Auth0 omits total on an empty page");
            assert!(page.authenticators.is_empty());
        }
        AuthenticationMethodsResponse::Bare(_) => panic!("an object must read as the paged shape"),
    }
    let patched: AuthenticationMethod = parse("mgmt_method_patch_email.json");
    assert_eq!(patched.confirmed, None, "PATCH responses have no confirmed");
    assert_eq!(patched.name.as_deref(), Some("Test2"));
    let got: AuthenticationMethod = parse("mgmt_method_get_email.json");
    assert_eq!(got.confirmed, Some(true));
}

#[test]
fn camel_case_webauthn_members_are_accepted() {
    let method: AuthenticationMethod = parse("mgmt_method_create_webauthn_roaming_doc.json");
    assert_eq!(method.key_id.as_deref(), Some("X9FrwMfmzj..."));
    assert_eq!(method.public_key.as_deref(), Some("bXktcHVibGljLWtle..."));
    assert_eq!(
        method.relying_party_identifier.as_deref(),
        Some("example-tenant.auth0.com")
    );
    let json = to_value(&method);
    assert!(
        json.get("keyId").is_none() && json.get("key_id").is_some(),
        "we write the spec's names: {json}"
    );
}

#[test]
fn a_jwks_with_a_foreign_key_type_still_parses() {
    let jwks: Jwks = serde_json::from_value(json!({"keys": [
        {"kty": "EC", "crv": "P-256", "x": "abc", "y": "def", "kid": "ec-1", "use": "sig", "alg": "ES256"},
        {"kty": "RSA", "kid": "rsa-1", "n": "xyz", "e": "AQAB"}
    ]}))
    .expect("one unusable key must not make the whole set unreadable");
    assert!(
        !jwks
            .find("ec-1")
            .expect("ec key kept")
            .is_rs256_signing_key()
    );
    assert!(
        jwks.find("rsa-1").expect("rsa key").is_rs256_signing_key(),
        "use/alg may be absent"
    );
}

#[test]
fn every_known_type_has_a_human_label_and_unknown_types_show_their_name() {
    for kind in MethodType::KNOWN {
        assert_ne!(kind.label(), kind.as_str(), "{kind} needs a human label");
        assert!(!kind.label().is_empty());
    }
    assert_eq!(MethodType::from("magic-ring").label(), "magic-ring");
    assert_eq!(MethodType::WebauthnRoaming.label(), "Security key");
}
