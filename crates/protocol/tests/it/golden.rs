//! Every golden fixture deserializes into its type and re-serializes to Auth0's own field names and values.

use std::collections::{BTreeSet, HashSet};

use companion_protocol::auth0::{
    AuthenticationMethod, AuthenticationMethodsResponse, EnrollmentTicket, EnrollmentTicketRequest,
    GuardianFactor, GuardianFactorName, GuardianFactorUpdate, Jwks, MethodType, MfaAuthenticator,
    MfaAuthenticatorType, MfaPolicy, MfaRequiredErrorBody, MgmtErrorBody, OAuthErrorBody,
    OidcDiscovery, OobChannel, TicketFactor, TokenResponse, UserVerification,
    WebAuthnFactorSettings,
};
use companion_protocol::fixtures;

use crate::support::{assert_round_trip, fixture_dir, fixture_value, parse, to_value};

/// Fixtures that are data for tests rather than wire bodies.
const NOT_WIRE_BODIES: &[&str] = &["spec_schemas.json"];

/// Every wire fixture and the check that pins it. Adding a fixture file without a row here fails
/// `every_fixture_file_is_checked`.
/// A fixture file name and the check that pins it.
type Check = (&'static str, fn(&str));

const CHECKS: &[Check] = &[
    ("mgmt_methods_list_paged.json", |n| {
        let list = assert_round_trip::<AuthenticationMethodsResponse>(n, &[], &[]);
        assert!(matches!(list, AuthenticationMethodsResponse::Paged(ref p) if p.total == Some(1)));
    }),
    ("mgmt_methods_list_paged_empty.json", |n| {
        let list = assert_round_trip::<AuthenticationMethodsResponse>(n, &[], &[]);
        assert!(
            matches!(list, AuthenticationMethodsResponse::Paged(ref p) if p.total.is_none() && p.limit == 50)
        );
    }),
    ("mgmt_methods_list_bare_doc.json", |n| {
        let list = assert_round_trip::<AuthenticationMethodsResponse>(n, &[], &[]);
        assert!(matches!(list, AuthenticationMethodsResponse::Bare(ref m) if m.len() == 1));
    }),
    ("mgmt_method_get_email.json", |n| {
        assert_round_trip::<AuthenticationMethod>(n, &[], &[]);
    }),
    ("mgmt_method_patch_email.json", |n| {
        assert_round_trip::<AuthenticationMethod>(n, &[], &[]);
    }),
    ("mgmt_method_post_email.json", |n| {
        assert_round_trip::<AuthenticationMethod>(n, &[], &[]);
    }),
    ("mgmt_method_get_phone.json", |n| {
        assert_round_trip::<AuthenticationMethod>(n, &[], &[]);
    }),
    ("mgmt_method_create_webauthn_roaming_doc.json", |n| {
        // The doc's camelCase keys are read; we write the spec's snake_case names.
        let m = assert_round_trip::<AuthenticationMethod>(
            n,
            &[],
            &[
                ("keyId", "key_id"),
                ("publicKey", "public_key"),
                ("relyingPartyIdentifier", "relying_party_identifier"),
            ],
        );
        assert_eq!(m.kind, MethodType::WebauthnRoaming);
    }),
    ("passkey_method_auth0_swift.json", |n| {
        let m = assert_round_trip::<AuthenticationMethod>(n, &[], &[]);
        assert_eq!(m.kind, MethodType::Passkey);
    }),
    ("passkey_method_myaccount_spec.json", |n| {
        // `relying_party_id` and `usage` are My Account-only members that the Management shape ignores.
        assert_round_trip::<AuthenticationMethod>(n, &["relying_party_id", "usage"], &[]);
    }),
    ("guardian_ticket_request.json", |n| {
        let r = assert_round_trip::<EnrollmentTicketRequest>(n, &[], &[]);
        assert_eq!(r.factor, Some(TicketFactor::PushNotification));
    }),
    ("guardian_ticket_response.json", |n| {
        assert_round_trip::<EnrollmentTicket>(n, &[], &[]);
    }),
    ("guardian_factors_list.json", |n| {
        let factors = assert_round_trip::<Vec<GuardianFactor>>(n, &[], &[]);
        let names: HashSet<GuardianFactorName> =
            factors.iter().map(GuardianFactor::factor_name).collect();
        let known: HashSet<GuardianFactorName> =
            GuardianFactorName::KNOWN.iter().cloned().collect();
        assert_eq!(
            names, known,
            "the recorded list names exactly the known factors"
        );
    }),
    ("guardian_factor_put_response.json", |n| {
        assert!(assert_round_trip::<GuardianFactorUpdate>(n, &[], &[]).enabled);
    }),
    ("guardian_policies_empty.json", |n| {
        assert!(assert_round_trip::<Vec<MfaPolicy>>(n, &[], &[]).is_empty());
    }),
    ("guardian_policies_all_applications.json", |n| {
        assert_eq!(
            assert_round_trip::<Vec<MfaPolicy>>(n, &[], &[]),
            [MfaPolicy::AllApplications]
        );
    }),
    ("webauthn_roaming_settings_get.json", |n| {
        let s = assert_round_trip::<WebAuthnFactorSettings>(n, &[], &[]);
        assert_eq!(s.user_verification, Some(UserVerification::Required));
        assert_eq!(s.override_relying_party, Some(false));
    }),
    ("webauthn_roaming_settings_put_response.json", |n| {
        let s = assert_round_trip::<WebAuthnFactorSettings>(n, &[], &[]);
        assert_eq!(s.user_verification, Some(UserVerification::Preferred));
        assert_eq!(s.override_relying_party, None, "absent keys stay absent");
    }),
    ("webauthn_platform_settings_get.json", |n| {
        let s = assert_round_trip::<WebAuthnFactorSettings>(n, &[], &[]);
        assert_eq!(s.user_verification, None);
    }),
    ("token_client_credentials_recorded.json", |n| {
        let t = assert_round_trip::<TokenResponse>(n, &[], &[]);
        assert_eq!((t.expires_in, t.token_type.as_str()), (86_400, "Bearer"));
    }),
    ("token_client_credentials_doc.json", |n| {
        let t = assert_round_trip::<TokenResponse>(n, &[], &[]);
        assert_eq!(
            t.scope.as_deref(),
            Some("read:clients create:clients read:client_keys")
        );
    }),
    ("mgmt_error_enrollment_not_found.json", |n| {
        let e = assert_round_trip::<MgmtErrorBody>(n, &[], &[]);
        assert_eq!(e.error_code.as_deref(), Some("enrollment_not_found"));
    }),
    ("mgmt_error_inexistent_user.json", |n| {
        assert_eq!(
            assert_round_trip::<MgmtErrorBody>(n, &[], &[]).status_code,
            404
        );
    }),
    ("mgmt_error_conflict_no_error_code.json", |n| {
        assert_eq!(
            assert_round_trip::<MgmtErrorBody>(n, &[], &[]).error_code,
            None
        );
    }),
    ("mgmt_error_insufficient_scope.json", |n| {
        assert_eq!(
            assert_round_trip::<MgmtErrorBody>(n, &[], &[]).status_code,
            403
        );
    }),
    ("oauth_error_invalid_grant.json", |n| {
        let e = assert_round_trip::<OAuthErrorBody>(n, &[], &[]);
        assert!(!e.is_mfa_required());
    }),
    ("oauth_error_mfa_required.json", |n| {
        let full = assert_round_trip::<MfaRequiredErrorBody>(n, &[], &[]);
        assert_eq!(full.mfa_token.as_deref(), Some("test-mfa-token"));
        let requirements = full
            .mfa_requirements
            .expect("recorded body has mfa_requirements");
        assert_eq!(
            requirements.challenge.expect("challenge list")[0].kind,
            "otp"
        );
        // The same body also reads as the generic OAuth error body, which ignores the extra members.
        let generic =
            assert_round_trip::<OAuthErrorBody>(n, &["mfa_token", "mfa_requirements"], &[]);
        assert!(generic.is_mfa_required());
    }),
    ("mfa_authenticators_list.json", |n| {
        let list = assert_round_trip::<Vec<MfaAuthenticator>>(n, &[], &[]);
        assert_eq!(list.len(), 6);
        assert!(
            list.iter().all(|a| a.authenticator_type.is_known()),
            "all recorded types are known"
        );
        assert!(
            list.iter()
                .filter_map(|a| a.oob_channel.as_ref())
                .all(OobChannel::is_known)
        );
        let push = list
            .iter()
            .find(|a| a.id.starts_with("push|"))
            .expect("recorded push authenticator");
        assert_eq!(push.authenticator_type, MfaAuthenticatorType::Oob);
        assert_eq!(push.oob_channel, Some(OobChannel::Auth0));
        assert_eq!(
            list[0].name.as_deref(),
            Some("XXXXXXXXX9167"),
            "masked phone kept verbatim"
        );
    }),
    ("oidc_discovery_auth0.json", |n| {
        let d = assert_round_trip::<OidcDiscovery>(n, &[], &[]);
        assert!(
            d.issuer.ends_with('/'),
            "Auth0's issuer has a trailing slash"
        );
        assert_eq!(d.jwks_uri, format!("{}.well-known/jwks.json", d.issuer));
    }),
    ("oidc_discovery_auth0_minimal.json", |n| {
        let d = assert_round_trip::<OidcDiscovery>(n, &[], &[]);
        assert_eq!(d.token_endpoint, None);
    }),
    ("jwks_auth0.json", |n| {
        let jwks = assert_round_trip::<Jwks>(n, &[], &[]);
        assert_eq!(jwks.keys.len(), 2);
        assert!(jwks.keys.iter().all(|k| k.is_rs256_signing_key()));
        let key = jwks
            .find("NKxtg1GbhZJBVcnBjtSqI")
            .expect("second key by kid");
        assert_eq!(key.e.as_deref(), Some("AQAB"));
        assert!(jwks.find("unknown-kid").is_none());
    }),
];

#[test]
fn every_fixture_deserializes_and_re_serializes_with_auth0_names() {
    for (name, check) in CHECKS {
        check(name);
    }
}

#[test]
fn every_fixture_file_is_checked_and_exported() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture directory exists")
        .map(|entry| {
            entry
                .expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    let checked: BTreeSet<String> = CHECKS
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .chain(NOT_WIRE_BODIES.iter().map(|name| (*name).to_owned()))
        .collect();
    assert_eq!(
        on_disk, checked,
        "every fixture file needs a check in golden.rs (and no check may lack a file)"
    );
    let exported: BTreeSet<String> = fixtures::ALL
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    assert_eq!(
        on_disk, exported,
        "companion_protocol::fixtures::ALL must list every fixture file"
    );
    for (name, contents) in fixtures::ALL {
        let on_disk = std::fs::read_to_string(fixture_dir().join(name)).expect("fixture readable");
        assert_eq!(
            contents, on_disk,
            "{name}: exported text must be the file's text"
        );
    }
    let readme = std::fs::read_to_string(fixture_dir().join("README.md"))
        .expect("fixtures/README.md exists");
    for name in &on_disk {
        assert!(
            readme.contains(&format!("`{name}`")),
            "README.md must give the provenance of {name}"
        );
    }
}

#[test]
fn shape_comparison_accepts_same_shape_and_reports_differences() {
    let fixture = fixture_value("mgmt_methods_list_paged.json");
    // A dev-tenant style response: other ids, dates and more items, but the same shape.
    let ours = serde_json::json!({
        "authenticators": [
            {"id": "email|dev_AAAAAAAAAAAAAAAA", "type": "email", "confirmed": true, "name": "Mine",
             "email": "a****@exam*******", "created_at": "2026-01-01T00:00:00.000Z"},
            {"id": "email|dev_BBBBBBBBBBBBBBBB", "type": "email", "confirmed": false, "name": "Other",
             "email": "b****@exam*******", "created_at": "2026-01-02T00:00:00.000Z"}
        ],
        "total": 2, "start": 0, "limit": 50
    });
    assert_eq!(
        fixtures::shape_mismatches(&fixture, &ours, &[]),
        Vec::<String>::new()
    );

    let wrong = serde_json::json!({
        "authenticators": [{"id": "email|dev_A", "kind": "email", "confirmed": "yes", "name": "x",
                            "email": "e", "created_at": "c"}],
        "start": 0, "limit": 50
    });
    let mismatches = fixtures::shape_mismatches(&fixture, &wrong, &[]);
    assert!(
        mismatches.contains(&"$.authenticators[0].type: missing".to_owned()),
        "{mismatches:?}"
    );
    assert!(
        mismatches.contains(&"$.authenticators[0].kind: not in the fixture".to_owned()),
        "{mismatches:?}"
    );
    assert!(
        mismatches
            .contains(&"$.authenticators[0].confirmed: expected boolean, got string".to_owned())
    );
    assert!(
        mismatches.contains(&"$.total: missing".to_owned()),
        "{mismatches:?}"
    );
    assert!(
        fixtures::shape_mismatches(&fixture, &wrong, &["total", "type", "kind"])
            .iter()
            .all(|m| m.contains("confirmed")),
        "optional members may be absent or extra"
    );
}

#[test]
fn our_own_serialization_matches_fixture_shapes() {
    // The dev tenant builds these from our structs; this pins that our structs produce Auth0's shape.
    let method: AuthenticationMethod = parse("mgmt_method_get_phone.json");
    let page = serde_json::json!({"authenticators": [to_value(&method)], "total": 1, "start": 0, "limit": 50});
    let fixture = fixture_value("mgmt_methods_list_paged.json");
    let optional = [
        "email",
        "phone_number",
        "preferred_authentication_method",
        "authentication_methods",
    ];
    assert_eq!(
        fixtures::shape_mismatches(&fixture, &page, &optional),
        Vec::<String>::new()
    );
}
