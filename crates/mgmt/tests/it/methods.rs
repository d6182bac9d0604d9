//! The typed calls against the dev tenant: list (across pages), get, rename, delete, enrollment tickets.

use companion_devtenant::world::demo;
use companion_mgmt::{Method, MgmtError, Operation, OtherOperation};
use companion_protocol::auth0::{EnrollmentTicketRequest, MethodType, TicketFactor};

use crate::harness::{Tenant, alice_method_ids};

#[tokio::test]
async fn lists_every_method_across_pages() {
    let tenant = Tenant::start().await;
    let expected = alice_method_ids();
    assert!(
        expected.len() >= 3,
        "the demo world gives alice several methods: {expected:?}"
    );
    // One method per page forces the client through every page.
    let client = tenant.client_with(|c| c.page_size = 1);
    let methods = client
        .list_methods(demo::ALICE_USER_ID)
        .await
        .expect("list");
    let mut ids: Vec<String> = methods.iter().map(|m| m.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, expected);
    assert!(
        client.upstream_calls() >= expected.len() as u64,
        "one call per page: {} calls for {} methods",
        client.upstream_calls(),
        expected.len()
    );
    let roaming = methods
        .iter()
        .find(|m| m.kind == MethodType::WebauthnRoaming)
        .expect("alice has a security key");
    assert_eq!(roaming.name.as_deref(), Some("YubiKey 5C"));

    // With the default page size it is a single call.
    let client = tenant.client();
    let methods = client
        .list_methods(demo::ALICE_USER_ID)
        .await
        .expect("list");
    assert_eq!(methods.len(), expected.len());
    assert_eq!(client.upstream_calls(), 1);
}

#[tokio::test]
async fn a_user_without_methods_has_an_empty_list() {
    let tenant = Tenant::start().await;
    let methods = tenant
        .client()
        .list_methods(demo::BOB_USER_ID)
        .await
        .expect("list");
    assert!(methods.is_empty(), "bob has only a password: {methods:?}");
}

#[tokio::test]
async fn unknown_user_is_not_found() {
    let tenant = Tenant::start().await;
    let error = tenant
        .client()
        .list_methods("auth0|000000000000000000000000")
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            MgmtError::NotFound {
                op: Operation::ListMethods,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn get_rename_and_delete_a_method() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    let id = "webauthn-roaming|dev_aliceYubiKey0001";

    let method = client
        .get_method(demo::ALICE_USER_ID, id)
        .await
        .expect("get");
    assert_eq!(method.id, id);
    assert_eq!(method.kind, MethodType::WebauthnRoaming);

    let renamed = client
        .rename_method(demo::ALICE_USER_ID, id, "Old key")
        .await
        .expect("rename");
    assert_eq!(renamed.name.as_deref(), Some("Old key"));
    let again = client
        .get_method(demo::ALICE_USER_ID, id)
        .await
        .expect("get");
    assert_eq!(
        again.name.as_deref(),
        Some("Old key"),
        "the rename persisted"
    );

    client
        .delete_method(demo::ALICE_USER_ID, id)
        .await
        .expect("delete");
    let error = client
        .get_method(demo::ALICE_USER_ID, id)
        .await
        .unwrap_err();
    assert!(matches!(error, MgmtError::NotFound { .. }), "{error:?}");
    let remaining = client
        .list_methods(demo::ALICE_USER_ID)
        .await
        .expect("list");
    assert!(
        remaining.iter().all(|m| m.id != id),
        "deleted method still listed"
    );
    assert_eq!(remaining.len(), alice_method_ids().len() - 1);

    let error = client
        .delete_method(demo::ALICE_USER_ID, id)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            MgmtError::NotFound {
                op: Operation::DeleteMethod,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn another_users_method_is_not_found() {
    let tenant = Tenant::start().await;
    let error = tenant
        .client()
        .get_method(demo::BOB_USER_ID, "webauthn-roaming|dev_aliceYubiKey0001")
        .await
        .unwrap_err();
    assert!(matches!(error, MgmtError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn an_over_long_name_is_rejected_with_auth0s_body() {
    let tenant = Tenant::start().await;
    let error = tenant
        .client()
        .rename_method(
            demo::ALICE_USER_ID,
            "webauthn-roaming|dev_aliceYubiKey0001",
            "a name far longer than twenty characters",
        )
        .await
        .unwrap_err();
    match error {
        MgmtError::Rejected { status, body, .. } => {
            assert_eq!(status, 400);
            let body = body.expect("Auth0 error body kept");
            assert_eq!(body.status_code, 400);
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn ids_that_change_the_path_are_refused_without_a_call() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    for (user, method) in [
        ("", "x"),
        ("..", "x"),
        (demo::ALICE_USER_ID, ".."),
        (demo::ALICE_USER_ID, ""),
    ] {
        let error = client.get_method(user, method).await.unwrap_err();
        assert!(
            matches!(error, MgmtError::InvalidId { .. }),
            "{user:?}/{method:?}: {error:?}"
        );
    }
    assert_eq!(client.upstream_calls(), 0);
    assert_eq!(
        client.token_fetches(),
        0,
        "refused before any token was needed"
    );
}

#[tokio::test]
async fn slashes_in_ids_stay_inside_one_segment() {
    let tenant = Tenant::start().await;
    // Encoded, `a/../../x` is one (unknown) segment, not a path traversal.
    let error = tenant
        .client()
        .get_method(demo::ALICE_USER_ID, "totp|a/../../../x")
        .await
        .unwrap_err();
    assert!(matches!(error, MgmtError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn creates_an_enrollment_ticket() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    let request = EnrollmentTicketRequest {
        user_id: demo::ALICE_USER_ID.to_owned(),
        email: None,
        send_mail: Some(false),
        email_locale: None,
        factor: Some(TicketFactor::WebauthnRoaming),
        allow_multiple_enrollments: Some(true),
    };
    let ticket = client
        .create_enrollment_ticket(&request)
        .await
        .expect("ticket");
    assert!(!ticket.ticket_id.is_empty());
    assert!(
        ticket.ticket_url.starts_with(tenant.base_url()),
        "ticket url {} is on the tenant",
        ticket.ticket_url
    );
    let second = client
        .create_enrollment_ticket(&request)
        .await
        .expect("ticket");
    assert_ne!(
        second.ticket_id, ticket.ticket_id,
        "each POST mints a new ticket"
    );
}

#[tokio::test]
async fn ticket_for_an_unknown_user_is_not_found() {
    let tenant = Tenant::start().await;
    let request = EnrollmentTicketRequest {
        user_id: "auth0|000000000000000000000000".to_owned(),
        email: None,
        send_mail: None,
        email_locale: None,
        factor: Some(TicketFactor::WebauthnPlatform),
        allow_multiple_enrollments: None,
    };
    let error = tenant
        .client()
        .create_enrollment_ticket(&request)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            MgmtError::NotFound {
                op: Operation::CreateEnrollmentTicket,
                ..
            }
        ),
        "{error:?}"
    );
}

static READ_FACTORS: OtherOperation = OtherOperation {
    name: "read guardian factors",
    idempotent: true,
};
static DELETE_METHOD_RAW: OtherOperation = OtherOperation {
    name: "delete method (raw)",
    idempotent: true,
};

#[tokio::test]
async fn raw_requests_share_the_token_and_error_rules() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    let op = Operation::Other(&READ_FACTORS);
    // The proxy's M2M client has no `read:guardian_factors`: Auth0's 403 body comes back typed.
    let error = client
        .request_json(op, Method::GET, "/guardian/factors", None)
        .await
        .unwrap_err();
    match &error {
        MgmtError::Forbidden {
            op: failed, body, ..
        } => {
            assert_eq!(*failed, op);
            assert_eq!(
                body.as_ref().and_then(|b| b.error_code.as_deref()),
                Some("insufficient_scope"),
                "{body:?}"
            );
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert!(
        error.to_string().starts_with("read guardian factors: "),
        "{error}"
    );

    let op = Operation::Other(&DELETE_METHOD_RAW);
    let path = "/users/auth0%7C6a11ce000000000000000001/authentication-methods/totp%7Cdev_aliceTotp0000001";
    let answer = client
        .request_json(op, Method::DELETE, path, None)
        .await
        .expect("raw delete");
    assert_eq!(answer, serde_json::Value::Null, "a 204 is null");
    let error = client
        .get_method(demo::ALICE_USER_ID, "totp|dev_aliceTotp0000001")
        .await
        .unwrap_err();
    assert!(matches!(error, MgmtError::NotFound { .. }), "{error:?}");
    assert_eq!(client.token_fetches(), 1);
}

#[tokio::test]
async fn raw_paths_must_be_absolute() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    let op = Operation::Other(&READ_FACTORS);
    for path in ["guardian/factors", "//evil.example/x", ""] {
        let error = client
            .request_json(op, Method::GET, path, None)
            .await
            .unwrap_err();
        assert!(
            matches!(error, MgmtError::InvalidPath { .. }),
            "{path:?}: {error:?}"
        );
    }
    assert_eq!(client.upstream_calls(), 0);
}
