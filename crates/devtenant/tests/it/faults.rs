//! The `/__dev/` control surface over real HTTP: injected latency, 429 and 5xx (N times, then recovery), faults on
//! non-Management routes, key rotation with a grace period, and 404s without `--dev-controls`.

use std::time::{Duration, Instant};

use companion_devtenant::TenantOptions;
use companion_devtenant::clock::Clock as _;
use companion_devtenant::faults::FaultSpec;
use companion_devtenant::world::demo;
use companion_protocol::auth0::MgmtErrorBody;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::mgmt::{
    ALL_SCOPES, call, error_body, methods_path, mint, options, ratelimit_headers, spawn,
    spawn_manual,
};
use crate::support;

#[tokio::test]
async fn injected_latency_delays_only_matching_requests() {
    let (tenant, http) = spawn().await;
    let token = mint(&tenant, &ALL_SCOPES);
    let added = http
        .post(tenant.url("/__dev/faults"))
        .json(&json!({"path_prefix": "/api/v2/guardian/", "method": "GET", "latency_ms": 1500}))
        .send()
        .await
        .expect("add fault");
    assert_eq!(added.status(), StatusCode::CREATED);
    let id = added.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("an id")
        .to_owned();

    let started = Instant::now();
    let slow = call(
        &http,
        &tenant,
        Method::GET,
        "/api/v2/guardian/factors",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        slow.status(),
        StatusCode::OK,
        "latency alone still answers normally"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "delayed by the injected latency, took {:?}",
        started.elapsed()
    );
    let listed: Value = http
        .get(tenant.url("/__dev/faults"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["hits"], 1);

    let removed = http
        .delete(tenant.url(&format!("/__dev/faults/{id}")))
        .send()
        .await
        .expect("remove");
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let started = Instant::now();
    let fast = call(
        &http,
        &tenant,
        Method::GET,
        "/api/v2/guardian/factors",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(fast.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "no delay once cleared"
    );
    let gone = http
        .delete(tenant.url(&format!("/__dev/faults/{id}")))
        .send()
        .await
        .expect("remove again");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    tenant.shutdown().await;
}

#[tokio::test]
async fn injected_429_answers_auth0s_body_n_times_then_recovers() {
    let (tenant, http, clock) = spawn_manual(None).await;
    let token = support::mgmt_token(&tenant, &http).await;
    let path = methods_path(demo::ALICE_USER_ID);
    let added = http
        .post(tenant.url("/__dev/faults"))
        .json(&json!({"path_prefix": "/api/v2/users/", "method": "get", "status": 429, "times": 2, "retry_after": 3}))
        .send()
        .await
        .expect("add fault");
    assert_eq!(added.status(), StatusCode::CREATED);

    for attempt in 0..2 {
        let limited = call(&http, &tenant, Method::GET, &path, Some(&token), None).await;
        assert_eq!(
            limited.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "attempt {attempt}"
        );
        let (_, remaining, reset) = ratelimit_headers(&limited);
        assert_eq!(remaining, 0);
        assert_eq!(
            reset,
            clock.unix() + 3,
            "x-ratelimit-reset is retry_after from now"
        );
        assert_eq!(limited.headers()["retry-after"], "3");
        let body = error_body(limited, StatusCode::TOO_MANY_REQUESTS).await;
        assert!(body.message.starts_with("Too many requests."));
    }
    let delete_unaffected = call(
        &http,
        &tenant,
        Method::DELETE,
        &format!("{path}/{}", crate::mgmt::enc("totp|dev_missing")),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        delete_unaffected.status(),
        StatusCode::NOT_FOUND,
        "other methods are not faulted"
    );
    let recovered = call(&http, &tenant, Method::GET, &path, Some(&token), None).await;
    assert_eq!(
        recovered.status(),
        StatusCode::OK,
        "recovers after the two injected failures"
    );
    let calls = tenant.state.faults.mgmt_calls();
    let summary: Vec<(u16, bool)> = calls.iter().map(|c| (c.status, c.injected)).collect();
    assert_eq!(
        summary,
        [(429, true), (429, true), (404, false), (200, false)]
    );
    assert_eq!(
        calls[0].client_id.as_deref(),
        Some(demo::PROXY_CLIENT_ID),
        "injected calls still name the client"
    );
    tenant.shutdown().await;
}

#[tokio::test]
async fn injected_5xx_apply_to_any_route_until_cleared() {
    let (tenant, http) = spawn().await;
    let token = mint(&tenant, &ALL_SCOPES);
    let faults = &tenant.state.faults;
    faults
        .add(FaultSpec::status("/api/v2/guardian/factors", 500).times(1))
        .expect("valid");
    faults
        .add(FaultSpec::status("/.well-known/jwks.json", 503).retry_after(7))
        .expect("valid");
    faults
        .add(FaultSpec::status("/oauth/token", 502).method("POST"))
        .expect("valid");

    let mgmt = call(
        &http,
        &tenant,
        Method::GET,
        "/api/v2/guardian/factors",
        Some(&token),
        None,
    )
    .await;
    ratelimit_headers(&mgmt);
    let body: MgmtErrorBody = error_body(mgmt, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert_eq!(body.status_code, 500);
    let recovered = call(
        &http,
        &tenant,
        Method::GET,
        "/api/v2/guardian/factors",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(recovered.status(), StatusCode::OK, "times: 1");

    for _ in 0..3 {
        let jwks = http
            .get(tenant.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("jwks");
        assert_eq!(
            jwks.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "until cleared"
        );
        assert_eq!(jwks.headers()["retry-after"], "7");
        let body: Value = jwks.json().await.expect("a JSON body");
        assert_eq!(body["error"], "server_error");
    }
    let token_down = http
        .post(tenant.url("/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(token_down.status(), StatusCode::BAD_GATEWAY);
    let discovery = http
        .get(tenant.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery");
    assert_eq!(
        discovery.status(),
        StatusCode::OK,
        "unmatched routes are untouched"
    );

    let cleared = http
        .delete(tenant.url("/__dev/faults"))
        .send()
        .await
        .expect("clear");
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert!(faults.list().is_empty());
    let jwks = http
        .get(tenant.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks");
    assert_eq!(jwks.status(), StatusCode::OK, "recovered after clearing");
    let token = support::mgmt_token(&tenant, &http).await;
    assert!(!token.is_empty(), "/oauth/token works again");
    tenant.shutdown().await;
}

#[tokio::test]
async fn the_fault_api_refuses_invalid_faults() {
    let (tenant, http) = spawn().await;
    for bad in [
        json!({"path_prefix": "/x"}),
        json!({"path_prefix": "x", "status": 500}),
        json!({"path_prefix": "/x", "status": 200}),
        json!({"path_prefix": "/x", "status": 500, "colour": "red"}),
        json!({"path_prefix": "/__dev/faults", "status": 500}),
        json!({"path_prefix": "/x", "status": 500, "method": "NOT A METHOD"}),
    ] {
        let response = http
            .post(tenant.url("/__dev/faults"))
            .json(&bad)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = response.json().await.expect("json");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
    assert!(tenant.state.faults.list().is_empty());
    tenant.shutdown().await;
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_during_the_grace_period() {
    let (tenant, http, clock) = spawn_manual(None).await;
    let path = methods_path(demo::ALICE_USER_ID);
    // Valid for longer than the grace period, so only the key's retirement can reject it.
    let old = crate::mgmt::mint_for(
        &tenant,
        &ALL_SCOPES,
        &format!("{}/api/v2/", tenant.base_url()),
        10 * 24 * 3600,
    );
    let old_kid = tenant.state.keys.current_kid();

    let rotated = http
        .post(tenant.url("/__dev/keys/rotate"))
        .send()
        .await
        .expect("rotate");
    assert_eq!(rotated.status(), StatusCode::OK);
    let new_kid = rotated.json::<Value>().await.expect("json")["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(tenant.state.keys.current_kid(), new_kid);
    let jwks: Value = http
        .get(tenant.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid"))
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );

    let during = call(&http, &tenant, Method::GET, &path, Some(&old), None).await;
    assert_eq!(
        during.status(),
        StatusCode::OK,
        "tokens of the old key still work"
    );
    let fresh = support::mgmt_token(&tenant, &http).await;
    let header = jsonwebtoken::decode_header(&fresh).expect("header");
    assert_eq!(
        header.kid.as_deref(),
        Some(new_kid.as_str()),
        "new tokens use the new key"
    );
    let with_new = call(&http, &tenant, Method::GET, &path, Some(&fresh), None).await;
    assert_eq!(with_new.status(), StatusCode::OK);

    let grace = u64::try_from(TenantOptions::for_test().key_grace_seconds).expect("positive");
    clock.advance(Duration::from_secs(grace + 1));
    let after = call(&http, &tenant, Method::GET, &path, Some(&old), None).await;
    assert_eq!(
        error_body(after, StatusCode::UNAUTHORIZED).await.message,
        "Invalid token",
        "the retired key is gone after the grace period"
    );
    tenant.shutdown().await;
}

#[tokio::test]
async fn dev_routes_are_404_without_dev_controls_but_management_works() {
    let (tenant, http) = support::spawn_with(TenantOptions {
        dev_controls: false,
        ..options()
    })
    .await;
    for (method, path) in [
        (Method::POST, "/__dev/faults"),
        (Method::GET, "/__dev/faults"),
        (Method::DELETE, "/__dev/faults"),
        (Method::POST, "/__dev/keys/rotate"),
        (Method::GET, "/__dev/mgmt-calls"),
        (Method::DELETE, "/__dev/mgmt-calls"),
    ] {
        let response = http
            .request(method.clone(), tenant.url(path))
            .json(&json!({"path_prefix": "/api/v2/", "status": 500}))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    let kid = tenant.state.keys.current_kid();
    assert_eq!(
        tenant.state.keys.current_kid(),
        kid,
        "nothing rotated the key"
    );
    let token = mint(&tenant, &ALL_SCOPES);
    let ok = call(
        &http,
        &tenant,
        Method::GET,
        &methods_path(demo::ALICE_USER_ID),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK, "no fault was added");
    tenant.shutdown().await;
}
