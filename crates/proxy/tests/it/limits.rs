//! Service limits: the body size limit, the whole-request deadline, and graceful shutdown draining a request
//! that is in flight.

use std::time::Duration;

use companion_devtenant::faults::FaultSpec;

use crate::harness::{ALICE, ALICE_KEY, World, enc};

#[tokio::test]
async fn bodies_over_the_limit_are_refused_without_upstream_calls() {
    let world = World::start_with(|settings| settings.max_body_bytes = 64, true).await;
    let token = world.token(ALICE, None);
    let before = world.mgmt_calls();
    let answer = world
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/me/authenticators/{}", enc(ALICE_KEY)),
            Some(&token),
            Some(serde_json::json!({ "name": "x".repeat(1000) })),
        )
        .await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(answer.code(), "invalid_request");
    assert_eq!(world.mgmt_calls(), before);
    let answer = world.rename(&token, &enc(ALICE_KEY), "small").await;
    assert_eq!(answer.status, 200, "small bodies pass: {}", answer.body);
    world.stop().await;
}

#[tokio::test]
async fn the_request_deadline_answers_503() {
    let world = World::start_with(
        |settings| settings.request_timeout = Duration::from_millis(300),
        true,
    )
    .await;
    world.fault(FaultSpec::latency("/api/v2/users/", Duration::from_millis(1500)).times(1));
    let answer = world.list(&world.token(ALICE, None)).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.code(), "upstream_unavailable");
    assert!(answer.header("retry-after").is_some());
    world.stop().await;
}

#[tokio::test]
async fn shutdown_drains_requests_in_flight() {
    let mut world = World::start().await;
    let token = world.token(ALICE, None);
    world.fault(FaultSpec::latency("/api/v2/users/", Duration::from_millis(700)).times(1));
    let request = world
        .http
        .get(world.url("/v1/me/authenticators"))
        .header("authorization", format!("Bearer {token}"));
    let in_flight = tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
    // Wait until the slow upstream call is being served, i.e. the proxy request is in flight.
    while world
        .tenant
        .state
        .faults
        .list()
        .first()
        .is_some_and(|f| f.hits == 0)
    {
        tokio::task::yield_now().await;
    }
    world.stop_proxy_only();
    let status = in_flight
        .await
        .expect("task")
        .expect("answered before the server stopped");
    assert_eq!(
        status, 200,
        "the in-flight request completes during shutdown"
    );
    let refused = world
        .http
        .get(world.url("/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "no new connections after shutdown");
    world.tenant_shutdown().await;
}

#[tokio::test]
async fn request_heads_over_the_limit_get_431_and_copied_heads_keep_every_header() {
    let world = World::start().await;
    let token = world.token(ALICE, None);
    let before = world.mgmt_calls();
    let answer = world
        .http
        .get(world.url("/v1/me/authenticators"))
        .header("authorization", format!("Bearer {token}"))
        .header(
            "x-padding",
            "p".repeat(companion_proxy::server::MAX_HEADER_BYTES),
        )
        .send()
        .await;
    match answer {
        Ok(response) => assert_eq!(response.status().as_u16(), 431, "an oversized head"),
        // hyper may close the connection while the client is still sending.
        Err(error) => assert!(
            error.is_request() || error.is_body() || error.is_connect(),
            "{error}"
        ),
    }
    assert_eq!(
        world.mgmt_calls(),
        before,
        "no upstream call for an oversized head"
    );

    // The head is copied out of hyper's buffer: repeated headers, the query and the request id survive.
    let response = world
        .http
        .get(world.url("/v1/me/authenticators?x=1"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-request-id", "copied-head-1")
        .header("accept", "application/json")
        .header("accept", "text/plain")
        .send()
        .await
        .expect("the proxy answers");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("copied-head-1"),
        "the request id header was copied"
    );
    world.stop().await;
}
