//! Upstream failures and their documented answers: 429 within and beyond the budget, 5xx, timeouts, refused
//! connections, the token endpoint down, and recovery once the fault clears; single flight of list reads.

use std::time::Duration;

use companion_devtenant::faults::FaultSpec;

use crate::harness::{ALICE, ALICE_KEY, BOB, World, enc};

const USERS: &str = "/api/v2/users/";

#[tokio::test]
async fn rate_limits_within_the_budget_are_waited_out() {
    let world = World::start().await;
    world.fault(FaultSpec::status(USERS, 429).times(1).retry_after(1));
    let answer = world.list(&world.token(ALICE, None)).await;
    assert_eq!(
        answer.status, 200,
        "one short 429 is absorbed: {}",
        answer.body
    );
    assert!(world.state.authenticators.mgmt().rate_limited() >= 1);
    world.stop().await;
}

#[tokio::test]
async fn rate_limits_beyond_the_budget_answer_503_with_retry_after() {
    let world = World::start().await;
    world.fault(FaultSpec::status(USERS, 429).retry_after(30));
    let token = world.token(ALICE, None);
    let answer = world.list(&token).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.code(), "upstream_unavailable");
    assert_eq!(
        answer.header("retry-after").as_deref(),
        Some("30"),
        "Auth0's own wait is passed on"
    );
    world.clear_faults();
    assert_eq!(
        world.list(&token).await.status,
        200,
        "recovers when Auth0 does"
    );
    let metrics = world
        .send(reqwest::Method::GET, "/metrics", None, None)
        .await;
    let text = metrics.body.as_str().expect("text").to_owned();
    assert!(
        text.lines().any(
            |l| l.starts_with("companion_proxy_upstream_rate_limited_total ") && !l.ends_with(" 0")
        ),
        "429s are counted: {text}"
    );
    world.stop().await;
}

#[tokio::test]
async fn server_errors_answer_503_and_recover() {
    let world = World::start().await;
    world.fault(FaultSpec::status(USERS, 500));
    let token = world.token(ALICE, Some(0));
    let answer = world.list(&token).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.code(), "upstream_unavailable");
    assert_eq!(answer.header("retry-after").as_deref(), Some("5"));
    assert!(
        !answer.body.to_string().contains("500"),
        "5xx bodies are generic: {}",
        answer.body
    );
    let answer = world.delete(&token, "totp%7Cdev_aliceTotp0000001").await;
    assert_eq!(answer.status, 503);
    world.clear_faults();
    assert_eq!(world.list(&token).await.status, 200);
    world.stop().await;
}

#[tokio::test]
async fn upstream_timeouts_answer_503() {
    let world = World::start_with(
        |settings| settings.upstream_timeout = Duration::from_millis(400),
        true,
    )
    .await;
    world.fault(FaultSpec::latency(USERS, Duration::from_millis(1500)).times(2));
    let token = world.token(ALICE, None);
    let answer = world.list(&token).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.code(), "upstream_unavailable");
    assert!(answer.header("retry-after").is_some());
    assert_eq!(
        world.list(&token).await.status,
        200,
        "recovers after the slow answers"
    );
    world.stop().await;
}

#[tokio::test]
async fn a_refused_connection_answers_503() {
    let world = World::start().await;
    let token = world.token(ALICE, None);
    assert_eq!(world.list(&token).await.status, 200);
    let other = world.token(ALICE, Some(1));
    // Stop the tenant: the proxy keeps its keys and token, but every Management call is refused.
    let stopped = world.stop_tenant().await;
    let answer = stopped.list(&other).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.code(), "upstream_unavailable");
    stopped.stop_proxy();
}

#[tokio::test]
async fn the_token_endpoint_down_answers_503_then_recovers() {
    let tenant = companion_devtenant::start(companion_devtenant::TenantOptions::for_test())
        .await
        .expect("tenant");
    tenant
        .state
        .faults
        .add(FaultSpec::status("/oauth/token", 503))
        .expect("fault");
    let world = World::start_proxy(tenant, |_| {}, true).await;
    let token = world.token(ALICE, None);
    let answer = world.list(&token).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.code(), "upstream_unavailable");
    assert!(answer.header("retry-after").is_some());
    assert_eq!(world.mgmt_calls(), 0, "no Management call without a token");
    let ready = world
        .send(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["management_token"], false);
    world.clear_faults();
    assert_eq!(
        world.list(&token).await.status,
        200,
        "recovers with the token endpoint"
    );
    let ready = world
        .send(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    world.stop().await;
}

#[tokio::test]
async fn identical_concurrent_lists_share_one_upstream_call() {
    let world = World::start().await;
    let token = world.token(ALICE, None);
    // Warm the verified-token cache, then slow the next upstream read so all requests overlap it.
    assert_eq!(world.list(&token).await.status, 200);
    let reads_before = world.mgmt_calls_of("GET");
    world.fault(FaultSpec::latency(USERS, Duration::from_millis(1500)).times(1));
    let statuses = world.concurrent_lists(vec![token.clone(); 100]).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let reads = world.mgmt_calls_of("GET") - reads_before;
    assert!(
        reads <= 5,
        "100 identical lists cost {reads} upstream reads"
    );
    assert!(world.state.authenticators.joined_reads() >= 90);
    world.stop().await;
}

#[tokio::test]
async fn a_burst_costs_one_upstream_call_however_its_arrivals_spread() {
    // The proxy clock stands still, so every read of the burst falls inside the share window, whether it overlaps
    // the upstream call or arrives after it: the count cannot depend on scheduling.
    let world = World::start_with(
        |settings| settings.list_share_window = Duration::from_secs(1),
        true,
    )
    .await;
    let token = world.token(ALICE, None);
    let reads_before = world.mgmt_calls_of("GET");
    let statuses = world.concurrent_lists(vec![token.clone(); 100]).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        world.mgmt_calls_of("GET") - reads_before,
        1,
        "100 identical lists within the window share one upstream read"
    );
    assert_eq!(world.state.authenticators.joined_reads(), 99);

    // Past the window the next read goes upstream again.
    world.clock.advance(Duration::from_millis(1001));
    assert_eq!(world.list(&token).await.status, 200);
    assert_eq!(
        world.mgmt_calls_of("GET") - reads_before,
        2,
        "a read after the window is fresh"
    );

    // A change through the proxy ends the window: the next list shows it.
    let answer = world.rename(&token, &enc(ALICE_KEY), "Renamed key").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let listed = world.list(&token).await;
    let names: Vec<&str> = listed.body["authenticators"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(
        names.contains(&"Renamed key"),
        "the list after a rename is not the shared older one: {names:?}"
    );
    world.stop().await;
}

#[tokio::test]
async fn finished_reads_are_swept_out_after_their_window() {
    let world = World::start_with(
        |settings| settings.list_share_window = Duration::from_secs(1),
        true,
    )
    .await;
    assert_eq!(world.list(&world.token(ALICE, None)).await.status, 200);
    assert_eq!(
        world.state.authenticators.flights_held(),
        1,
        "alice's read is kept for its window"
    );
    world.clock.advance(Duration::from_secs(2));
    assert_eq!(world.list(&world.token(BOB, None)).await.status, 200);
    assert_eq!(
        world.state.authenticators.flights_held(),
        1,
        "alice's stale read was swept when bob's began; only bob's is held"
    );
    world.stop().await;
}

#[tokio::test]
async fn a_failed_read_is_not_shared_after_it_ends() {
    let world = World::start_with(
        |settings| settings.list_share_window = Duration::from_secs(1),
        true,
    )
    .await;
    let token = world.token(ALICE, None);
    world.fault(FaultSpec::status(USERS, 500).times(2));
    let answer = world.list(&token).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    world.clear_faults();
    let answer = world.list(&token).await;
    assert_eq!(
        answer.status, 200,
        "an error is not kept for the window: {}",
        answer.body
    );
    world.stop().await;
}

#[tokio::test]
async fn a_free_tenant_rate_limit_is_absorbed_within_the_budget() {
    use companion_devtenant::config::RateLimit;
    let options = companion_devtenant::TenantOptions {
        mgmt_rate_limit: Some(RateLimit {
            count: 2,
            per: Duration::from_secs(1),
        }),
        ..companion_devtenant::TenantOptions::for_test()
    };
    let tenant = companion_devtenant::start(options).await.expect("tenant");
    let world = World::start_proxy(tenant, |_| {}, true).await;
    let token = world.token(ALICE, None);
    // Each rename is two Management calls (ownership read, PATCH): six calls against a 2-per-second bucket.
    for name in ["One", "Two", "Three"] {
        let answer = world
            .rename(&token, "totp%7Cdev_aliceTotp0000001", name)
            .await;
        assert_eq!(answer.status, 200, "{name}: {}", answer.body);
    }
    assert!(
        world.state.authenticators.mgmt().rate_limited() >= 1,
        "the tenant's real limiter answered 429 with x-ratelimit-reset at least once"
    );
    world.stop().await;
}
