//! Tolerant decoding of real recorded Auth0 bodies (`companion_protocol::fixtures`: go-auth0 recordings and doc
//! examples, auth0-reference.md §1, §4, §5), replayed by a double so both list shapes, a missing `total` and Auth0's error bodies are exercised through the client.

use std::sync::Arc;

use companion_mgmt::{MgmtClient, MgmtError};
use companion_protocol::auth0::MethodType;

use crate::doubles::{self, Answer, Seen};
use crate::harness::config_for;

// Recorded bodies (provenance in `crates/protocol/tests/fixtures/README.md`).
use companion_protocol::fixtures::{
    GUARDIAN_TICKET_RESPONSE as RECORDED_TICKET, MGMT_ERROR_INEXISTENT_USER as RECORDED_404,
    MGMT_ERROR_INSUFFICIENT_SCOPE as RECORDED_403, MGMT_METHOD_CREATE_WEBAUTHN_ROAMING_DOC,
    MGMT_METHOD_GET_PHONE as RECORDED_PHONE, MGMT_METHOD_PATCH_EMAIL as RECORDED_PATCH,
    MGMT_METHODS_LIST_BARE_DOC, MGMT_METHODS_LIST_PAGED as RECORDED_LIST,
    MGMT_METHODS_LIST_PAGED_EMPTY as RECORDED_EMPTY, TOKEN_CLIENT_CREDENTIALS_DOC,
    TOKEN_CLIENT_CREDENTIALS_RECORDED,
};

fn method_json(id: &str, kind: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"{kind}","created_at":"2026-01-01T00:00:00.000Z","some_future_field":{{"x":[1,2]}}}}"#
    )
}

fn page_of(seen: &Seen) -> u32 {
    seen.target
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("page="))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

async fn client_for(double: &doubles::Double, page_size: u32) -> MgmtClient {
    let mut config = config_for(&double.base);
    config.page_size = page_size;
    MgmtClient::new(config).unwrap()
}

#[tokio::test]
async fn recorded_list_and_masked_fields_decode() {
    let double = doubles::start(86400, Arc::new(|_| Answer::json(200, RECORDED_LIST))).await;
    let client = client_for(&double, 50).await;
    let methods = client
        .list_methods("auth0|68998c2d684ac37fcd52bfbe")
        .await
        .unwrap();
    assert_eq!(methods.len(), 1);
    assert_eq!(methods[0].kind, MethodType::Email);
    assert_eq!(methods[0].email.as_deref(), Some("chuc****@exam*******"));
    let seen = double.seen();
    assert_eq!(seen.len(), 1, "total reached: no second page");
    assert_eq!(
        seen[0].target,
        "/api/v2/users/auth0%7C68998c2d684ac37fcd52bfbe/authentication-methods?include_totals=true&per_page=50&page=0"
    );
    assert_eq!(seen[0].method, "GET");
}

#[tokio::test]
async fn empty_list_without_total_decodes() {
    let double = doubles::start(86400, Arc::new(|_| Answer::json(200, RECORDED_EMPTY))).await;
    let client = client_for(&double, 50).await;
    assert!(client.list_methods("auth0|x").await.unwrap().is_empty());
    assert_eq!(double.seen().len(), 1);
}

#[tokio::test]
async fn paged_shape_without_total_reads_until_a_short_page() {
    // Five methods, pages of two, never a `total`: pages 0, 1, 2 (short) are read.
    let double = doubles::start(
        86400,
        Arc::new(|seen| {
            let page = page_of(seen);
            let items: Vec<String> = (page * 2..(page * 2 + 2).min(5))
                .map(|i| {
                    method_json(
                        &format!("totp|dev_{i}"),
                        if i % 2 == 0 {
                            "totp"
                        } else {
                            "push-notification"
                        },
                    )
                })
                .collect();
            Answer::json(
                200,
                &format!(
                    r#"{{"authenticators":[{}],"start":{},"limit":2}}"#,
                    items.join(","),
                    page * 2
                ),
            )
        }),
    )
    .await;
    let client = client_for(&double, 2).await;
    let methods = client.list_methods("auth0|x").await.unwrap();
    let ids: Vec<&str> = methods.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "totp|dev_0",
            "totp|dev_1",
            "totp|dev_2",
            "totp|dev_3",
            "totp|dev_4"
        ]
    );
    assert_eq!(
        methods[1].kind,
        MethodType::Push,
        "push-notification is read as push"
    );
    assert_eq!(double.seen().len(), 3);
}

#[tokio::test]
async fn paged_shape_with_total_stops_at_the_total() {
    // Four methods in pages of two: exactly two calls, even though the second page is full.
    let double = doubles::start(
        86400,
        Arc::new(|seen| {
            let page = page_of(seen);
            let items: Vec<String> = (page * 2..(page * 2 + 2).min(4))
                .map(|i| method_json(&format!("webauthn-roaming|dev_{i}"), "webauthn-roaming"))
                .collect();
            Answer::json(
                200,
                &format!(
                    r#"{{"authenticators":[{}],"start":{},"limit":2,"total":4}}"#,
                    items.join(","),
                    page * 2
                ),
            )
        }),
    )
    .await;
    let client = client_for(&double, 2).await;
    assert_eq!(client.list_methods("auth0|x").await.unwrap().len(), 4);
    assert_eq!(double.seen().len(), 2);
}

#[tokio::test]
async fn bare_array_shape_and_unknown_types_decode() {
    let double = doubles::start(
        86400,
        Arc::new(|seen| {
            if page_of(seen) == 0 {
                Answer::json(
                    200,
                    &format!(
                        "[{},{}]",
                        method_json("x|1", "carrier-pigeon"),
                        method_json("x|2", "passkey")
                    ),
                )
            } else {
                Answer::json(200, "[]")
            }
        }),
    )
    .await;
    let client = client_for(&double, 2).await;
    let methods = client.list_methods("auth0|x").await.unwrap();
    assert_eq!(methods.len(), 2);
    assert_eq!(
        methods[0].kind,
        MethodType::Unknown("carrier-pigeon".to_owned())
    );
    assert_eq!(methods[1].kind, MethodType::Passkey);
    assert_eq!(
        double.seen().len(),
        2,
        "a full bare page asks for the next one"
    );
}

#[tokio::test]
async fn a_server_ignoring_paging_does_not_loop() {
    let double = doubles::start(
        86400,
        Arc::new(|_| {
            Answer::json(
                200,
                &format!(
                    "[{},{}]",
                    method_json("x|1", "totp"),
                    method_json("x|2", "email")
                ),
            )
        }),
    )
    .await;
    let client = client_for(&double, 2).await;
    assert_eq!(client.list_methods("auth0|x").await.unwrap().len(), 2);
    assert_eq!(
        double.seen().len(),
        2,
        "the repeated page adds nothing, so listing stops"
    );
}

#[tokio::test]
async fn recorded_get_patch_and_ticket_bodies_decode() {
    let double = doubles::start(
        86400,
        Arc::new(|seen| match seen.method.as_str() {
            "GET" => Answer::json(200, RECORDED_PHONE),
            "PATCH" => Answer::json(200, RECORDED_PATCH),
            "DELETE" => Answer {
                status: 204,
                headers: Vec::new(),
                body: String::new(),
            },
            _ => Answer::json(200, RECORDED_TICKET),
        }),
    )
    .await;
    let client = client_for(&double, 50).await;
    let phone = client
        .get_method("auth0|x", "phone|dev_kXVq4drj3Mw6uCF5")
        .await
        .unwrap();
    assert_eq!(phone.kind, MethodType::Phone);
    assert_eq!(phone.phone_number.as_deref(), Some("XXXXXXXXXXX5044"));
    let linked = phone.authentication_methods.expect("linked sms method");
    assert_eq!(linked[0].kind, "sms");

    let patched = client
        .rename_method("auth0|x", "email|dev_f0O81fTcftc0kN2v", "Test2")
        .await
        .unwrap();
    assert_eq!(patched.name.as_deref(), Some("Test2"));
    assert_eq!(
        patched.confirmed, None,
        "PATCH responses carry no confirmed"
    );

    client
        .delete_method("auth0|x", "email|dev_f0O81fTcftc0kN2v")
        .await
        .unwrap();

    let ticket = client
        .create_enrollment_ticket(&companion_protocol::auth0::EnrollmentTicketRequest {
            user_id: "auth0|68998c2d684ac37fcd52bfbe".to_owned(),
            email: None,
            send_mail: None,
            email_locale: None,
            factor: None,
            allow_multiple_enrollments: Some(true),
        })
        .await
        .unwrap();
    assert_eq!(ticket.ticket_id, "jip3H2Q20fiUyQCcMmS0gBAinoBe4rOV");

    let seen = double.seen();
    assert_eq!(
        seen[0].target,
        "/api/v2/users/auth0%7Cx/authentication-methods/phone%7Cdev_kXVq4drj3Mw6uCF5"
    );
    assert_eq!(seen[1].method, "PATCH");
    assert_eq!(seen[1].body, r#"{"name":"Test2"}"#);
    assert_eq!(seen[2].method, "DELETE");
    assert_eq!(seen[3].target, "/api/v2/guardian/enrollments/ticket");
    assert_eq!(
        seen[3].body,
        r#"{"user_id":"auth0|68998c2d684ac37fcd52bfbe","allow_multiple_enrollments":true}"#
    );
}

#[tokio::test]
async fn recorded_error_bodies_are_kept() {
    let double = doubles::start(
        86400,
        Arc::new(|seen| {
            if seen.target.contains("nobody") {
                Answer::json(404, RECORDED_404)
            } else {
                Answer::json(403, RECORDED_403)
            }
        }),
    )
    .await;
    let client = client_for(&double, 50).await;
    let error = client.list_methods("auth0|nobody").await.unwrap_err();
    let body = error.body().expect("404 body kept").clone();
    assert!(matches!(error, MgmtError::NotFound { .. }), "{error:?}");
    assert_eq!(body.error_code.as_deref(), Some("inexistent_user"));

    let error = client.list_methods("auth0|x").await.unwrap_err();
    match &error {
        MgmtError::Forbidden { message, body, .. } => {
            assert_eq!(message, "Insufficient scope, expected any of: read:grants");
            assert_eq!(
                body.as_ref().and_then(|b| b.error_code.as_deref()),
                Some("insufficient_scope")
            );
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_non_json_success_body_is_a_decode_error() {
    let double = doubles::start(86400, Arc::new(|_| Answer::json(200, "<html>hello</html>"))).await;
    let client = client_for(&double, 50).await;
    let error = client.get_method("auth0|x", "totp|y").await.unwrap_err();
    assert!(matches!(error, MgmtError::Decode { .. }), "{error:?}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let double = doubles::start(
        86400,
        Arc::new(|_| Answer::json(302, "").with_header("location", "http://127.0.0.1:9/elsewhere")),
    )
    .await;
    let client = client_for(&double, 50).await;
    let error = client.get_method("auth0|x", "totp|y").await.unwrap_err();
    assert!(
        matches!(error, MgmtError::Upstream { status: 302, .. }),
        "{error:?}"
    );
    assert_eq!(double.seen().len(), 1);
}

#[tokio::test]
async fn documented_bodies_decode() {
    let double = doubles::start(
        86400,
        Arc::new(|seen| {
            if seen.target.contains("/authentication-methods/") {
                Answer::json(200, MGMT_METHOD_CREATE_WEBAUTHN_ROAMING_DOC)
            } else {
                Answer::json(200, MGMT_METHODS_LIST_BARE_DOC)
            }
        }),
    )
    .await;
    let client = client_for(&double, 50).await;
    let methods = client.list_methods("auth0|x").await.unwrap();
    assert_eq!(methods.len(), 1);
    assert_eq!(methods[0].kind, MethodType::Totp);
    let roaming = client
        .get_method("auth0|x", "webauthn-roaming|dev_XXXXXXXXXXXXXXXX")
        .await
        .unwrap();
    assert_eq!(roaming.kind, MethodType::WebauthnRoaming);
    assert_eq!(
        roaming.key_id.as_deref(),
        Some("X9FrwMfmzj..."),
        "camelCase keyId accepted"
    );
    assert_eq!(
        roaming.relying_party_identifier.as_deref(),
        Some("example-tenant.auth0.com")
    );
}

#[tokio::test]
async fn recorded_and_documented_token_responses_decode() {
    for body in [
        TOKEN_CLIENT_CREDENTIALS_RECORDED,
        TOKEN_CLIENT_CREDENTIALS_DOC,
    ] {
        let double = doubles::start_with_token(
            0,
            Some(Arc::new(move |_| Answer::json(200, body))),
            Arc::new(|_| Answer::json(200, "[]")),
        )
        .await;
        let client = client_for(&double, 50).await;
        let token = client.token_cache().access_token().await.expect(body);
        assert!(!secrecy::ExposeSecret::expose_secret(token.secret()).is_empty());
        client.list_methods("auth0|x").await.unwrap();
        assert_eq!(double.token_hits(), 1, "an 86400 s token is reused");
    }
}
