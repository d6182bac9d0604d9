//! The M2M token: reuse, single flight, expiry with paused time, 401 refresh, transient and permanent failures.

use std::sync::Arc;
use std::time::Duration;

use companion_devtenant::world::demo;
use companion_mgmt::{FailureKind, MgmtClient, MgmtError, TokenFailureReason};
use secrecy::{ExposeSecret, SecretString};

use crate::doubles::{self, Answer};
use crate::faults::{self, FaultSpec};
use crate::harness::{Tenant, config_for};

#[tokio::test]
async fn one_token_serves_many_calls() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    for _ in 0..10 {
        client
            .list_methods(demo::ALICE_USER_ID)
            .await
            .expect("list");
    }
    client
        .get_method(demo::ALICE_USER_ID, "webauthn-roaming|dev_aliceYubiKey0001")
        .await
        .expect("get");
    assert_eq!(
        client.token_fetches(),
        1,
        "the token is fetched once and reused"
    );
    assert_eq!(client.upstream_calls(), 11);
    assert_eq!(client.metrics().token_fetches, 1);
    let calls = tenant.running.state.faults.mgmt_calls();
    assert_eq!(calls.len(), 11, "the tenant saw every call");
    assert!(
        calls
            .iter()
            .all(|c| c.client_id.as_deref() == Some(demo::PROXY_CLIENT_ID) && c.status == 200),
        "every call carried the M2M token: {calls:?}"
    );
}

#[tokio::test]
async fn debug_output_never_shows_the_token() {
    let double = doubles::start(3600, Arc::new(|_| Answer::json(200, "[]"))).await;
    let client = MgmtClient::new(config_for(&double.base)).unwrap();
    let token = client.token_cache().access_token().await.unwrap();
    assert_eq!(token.secret().expose_secret(), "token-1");
    for debug in [
        format!("{client:?}"),
        format!("{:?}", client.token_cache()),
        format!("{token:?}"),
    ] {
        assert!(!debug.contains("token-1"), "token leaked: {debug}");
        assert!(
            !debug.contains(demo::PROXY_CLIENT_SECRET),
            "secret leaked: {debug}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_first_calls_fetch_one_token() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client.list_methods(demo::ALICE_USER_ID).await
        }));
    }
    for task in tasks {
        task.await.unwrap().expect("list");
    }
    assert_eq!(
        client.token_fetches(),
        1,
        "single flight: 50 callers, one token request"
    );
    assert_eq!(client.upstream_calls(), 50);
}

#[tokio::test]
async fn wrong_secret_is_a_permanent_failure_without_retries() {
    let tenant = Tenant::start().await;
    let client =
        tenant.client_with(|c| c.client_secret = SecretString::from("not-the-demo-secret"));
    let error = client.list_methods(demo::ALICE_USER_ID).await.unwrap_err();
    let MgmtError::TokenRequest(token_error) = &error else {
        panic!("expected a token error, got {error:?}");
    };
    assert_eq!(token_error.kind(), FailureKind::Permanent);
    assert!(!error.is_transient());
    assert_eq!(token_error.status(), Some(401));
    assert_eq!(
        token_error.oauth_error().map(|b| b.error.as_str()),
        Some("invalid_client")
    );
    assert_eq!(
        client.token_fetches(),
        1,
        "a permanent failure is not retried"
    );
    assert_eq!(client.upstream_calls(), 0);
    let text = format!("{error} {error:?} {error:#?}");
    assert!(
        !text.contains("not-the-demo-secret"),
        "secret leaked: {text}"
    );
}

#[tokio::test]
async fn token_endpoint_down_is_transient_and_recovers() {
    let tenant = Tenant::start().await;
    faults::inject(&tenant, FaultSpec::status("/oauth/token", 503));
    let client = tenant.client();
    let error = client.list_methods(demo::ALICE_USER_ID).await.unwrap_err();
    let MgmtError::TokenRequest(token_error) = &error else {
        panic!("expected a token error, got {error:?}");
    };
    assert_eq!(token_error.kind(), FailureKind::Transient);
    assert_eq!(token_error.status(), Some(503));
    assert!(error.is_transient());
    assert_eq!(
        client.token_fetches(),
        3,
        "transient token failures are retried up to max_attempts"
    );
    assert_eq!(client.upstream_calls(), 0);

    faults::clear(&tenant);
    let methods = client
        .list_methods(demo::ALICE_USER_ID)
        .await
        .expect("recovered");
    assert!(!methods.is_empty());
    assert_eq!(client.token_fetches(), 4);
}

#[tokio::test]
async fn connection_refused_is_a_transient_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = MgmtClient::new(config_for(&format!("http://127.0.0.1:{port}"))).unwrap();
    let error = client.list_methods(demo::ALICE_USER_ID).await.unwrap_err();
    let MgmtError::TokenRequest(token_error) = &error else {
        panic!("expected a token error, got {error:?}");
    };
    assert_eq!(token_error.kind(), FailureKind::Transient);
    assert_eq!(token_error.reason(), TokenFailureReason::Transport);
    assert!(error.is_transient());
    assert_eq!(client.token_fetches(), 3);
}

#[tokio::test]
async fn the_token_request_is_a_client_credentials_form() {
    let double = doubles::start(
        3600,
        Arc::new(|_| Answer::json(200, r#"{"authenticators":[],"start":0,"limit":50}"#)),
    )
    .await;
    let client = MgmtClient::new(config_for(&double.base)).unwrap();
    client.list_methods("auth0|x").await.unwrap();
    let forms = double.token_forms();
    assert_eq!(forms.len(), 1);
    let form = &forms[0];
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("client_credentials")
    );
    assert_eq!(
        form.get("client_id").map(String::as_str),
        Some(demo::PROXY_CLIENT_ID)
    );
    assert_eq!(
        form.get("client_secret").map(String::as_str),
        Some(demo::PROXY_CLIENT_SECRET)
    );
    let audience = format!("{}/api/v2/", double.base);
    assert_eq!(form.get("audience"), Some(&audience));
    let seen = double.seen();
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer token-1"));
    assert_eq!(
        seen[0].user_agent.as_deref(),
        Some(concat!("companion-mgmt/", env!("CARGO_PKG_VERSION"))),
        "the configured user agent is sent"
    );
}

#[tokio::test(start_paused = true)]
async fn token_is_refreshed_only_within_the_slack_before_expiry() {
    let double = doubles::start(
        3600,
        Arc::new(|_| Answer::json(200, r#"{"authenticators":[],"start":0,"limit":50}"#)),
    )
    .await;
    let client = MgmtClient::new(config_for(&double.base)).unwrap();
    let cache = client.token_cache();
    let first = cache.access_token().await.unwrap();
    assert_eq!(first.secret().expose_secret(), "token-1");
    assert_eq!(double.token_hits(), 1);

    tokio::time::advance(Duration::from_secs(3600 - 60 - 1)).await;
    for _ in 0..5 {
        client.list_methods("auth0|x").await.unwrap();
    }
    assert_eq!(double.token_hits(), 1, "reused until the 60 s slack");

    tokio::time::advance(Duration::from_secs(2)).await;
    let second = cache.access_token().await.unwrap();
    assert_eq!(
        second.secret().expose_secret(),
        "token-2",
        "refreshed inside the slack"
    );
    assert_eq!(double.token_hits(), 2);
    assert_eq!(client.token_fetches(), 2);

    tokio::time::advance(Duration::from_secs(3000)).await;
    cache.access_token().await.unwrap();
    assert_eq!(double.token_hits(), 2);
}

#[tokio::test(start_paused = true)]
async fn concurrent_refresh_is_a_single_flight() {
    let double = doubles::start(
        600,
        Arc::new(|_| Answer::json(200, r#"{"authenticators":[],"start":0,"limit":50}"#)),
    )
    .await;
    let client = MgmtClient::new(config_for(&double.base)).unwrap();
    client.ensure_token().await.unwrap();
    tokio::time::advance(Duration::from_secs(601)).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = client.clone();
        tasks.push(tokio::spawn(
            async move { client.list_methods("auth0|x").await },
        ));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        double.token_hits(),
        2,
        "one initial fetch and one refresh for 50 callers"
    );
    let seen = double.seen();
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer token-2"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_401_refreshes_the_token_once_and_retries() {
    let double = doubles::start(
        3600,
        Arc::new(|seen| {
            if seen.authorization.as_deref() == Some("Bearer token-1") {
                Answer::json(
                    401,
                    r#"{"statusCode":401,"error":"Unauthorized","message":"Expired token received for JSON Web Token validation","attributes":{"error":"Expired token received for JSON Web Token validation"}}"#,
                )
            } else {
                Answer::json(200, r#"{"authenticators":[],"start":0,"limit":50}"#)
            }
        }),
    )
    .await;
    let client = MgmtClient::new(config_for(&double.base)).unwrap();
    client
        .list_methods("auth0|x")
        .await
        .expect("retried with a fresh token");
    assert_eq!(double.token_hits(), 2);
    assert_eq!(double.seen().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_persistent_401_is_unauthorized_after_one_refresh() {
    let double = doubles::start(
        3600,
        Arc::new(|_| {
            Answer::json(
                401,
                r#"{"statusCode":401,"error":"Unauthorized","message":"Invalid token"}"#,
            )
        }),
    )
    .await;
    let client = MgmtClient::new(config_for(&double.base)).unwrap();
    let error = client.list_methods("auth0|x").await.unwrap_err();
    match &error {
        MgmtError::Unauthorized { body, .. } => {
            assert_eq!(
                body.as_ref().map(|b| b.message.as_str()),
                Some("Invalid token")
            );
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert_eq!(double.token_hits(), 2, "one refresh, not a loop");
    assert_eq!(double.seen().len(), 2);
    let text = format!("{error} {error:?}");
    assert!(
        !text.contains("token-1") && !text.contains("token-2"),
        "token leaked: {text}"
    );
}

#[tokio::test(start_paused = true)]
async fn malformed_token_response_is_permanent() {
    let double = doubles::start_with_token(
        3600,
        Some(Arc::new(|_| Answer::json(200, r#"{"token":"nope"}"#))),
        Arc::new(|_| Answer::json(200, "[]")),
    )
    .await;
    let client = MgmtClient::new(config_for(&double.base)).unwrap();
    let error = client.ensure_token().await.unwrap_err();
    let MgmtError::TokenRequest(token_error) = &error else {
        panic!("expected a token error, got {error:?}");
    };
    assert_eq!(token_error.kind(), FailureKind::Permanent);
    assert_eq!(token_error.reason(), TokenFailureReason::Decode);
    assert_eq!(double.token_hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn access_denied_is_permanent_and_429_on_the_token_endpoint_is_transient() {
    let double = doubles::start_with_token(
        3600,
        Some(Arc::new(|_| {
            Answer::json(
                403,
                r#"{"error":"access_denied","error_description":"Client has not been granted scopes"}"#,
            )
        })),
        Arc::new(|_| Answer::json(200, "[]")),
    )
    .await;
    let client = MgmtClient::new(config_for(&double.base)).unwrap();
    let MgmtError::TokenRequest(error) = client.ensure_token().await.unwrap_err() else {
        panic!("expected a token error");
    };
    assert_eq!(error.kind(), FailureKind::Permanent);
    assert_eq!(
        error.oauth_error().map(|b| b.error.as_str()),
        Some("access_denied")
    );
    assert_eq!(double.token_hits(), 1);

    let double = doubles::start_with_token(
        3600,
        Some(Arc::new(|_| {
            Answer::json(
                429,
                r#"{"error":"too_many_requests","error_description":"Client quota exceeded"}"#,
            )
            .with_header("retry-after", "30")
        })),
        Arc::new(|_| Answer::json(200, "[]")),
    )
    .await;
    let client = MgmtClient::new(config_for(&double.base)).unwrap();
    let error = client.ensure_token().await.unwrap_err();
    assert!(error.is_transient());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(
        double.token_hits(),
        1,
        "a 30 s wait is beyond the 3 s budget: no retry"
    );
    assert_eq!(client.rate_limited(), 1);
}
