//! Rate limits, 5xx retries, timeouts: against the dev tenant's fault injection and rate limiter, plus a double
//! for the `x-ratelimit-reset`-only answer (the dev tenant always adds `retry-after`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use companion_devtenant::config::RateLimit;
use companion_devtenant::world::demo;
use companion_mgmt::{ManualClock, MgmtClient, MgmtError, Operation};
use companion_protocol::auth0::{EnrollmentTicketRequest, TicketFactor};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::doubles::{self, Answer};
use crate::faults::{self, FaultSpec};
use crate::harness::{Tenant, config_for};

const USERS: &str = "/api/v2/users/";
const TICKETS: &str = "/api/v2/guardian/enrollments/ticket";

fn ticket_request() -> EnrollmentTicketRequest {
    EnrollmentTicketRequest {
        user_id: demo::ALICE_USER_ID.to_owned(),
        email: None,
        send_mail: Some(false),
        email_locale: None,
        factor: Some(TicketFactor::WebauthnRoaming),
        allow_multiple_enrollments: Some(true),
    }
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    client.ensure_token().await.unwrap();
    faults::inject(
        &tenant,
        FaultSpec::status(USERS, 429)
            .method("GET")
            .times(1)
            .retry_after(1),
    );
    let started = Instant::now();
    let methods = client
        .list_methods(demo::ALICE_USER_ID)
        .await
        .expect("success after waiting");
    assert!(!methods.is_empty());
    assert_eq!(client.rate_limited(), 1);
    assert_eq!(client.upstream_calls(), 2, "one 429, one success");
    assert_eq!(
        faults::mgmt_calls(&tenant, "GET", USERS),
        2,
        "the tenant saw both"
    );
    let elapsed = started.elapsed();
    assert!(
        (Duration::from_millis(1200)..Duration::from_secs(6)).contains(&elapsed),
        "waited 1 s + 25%, once: {elapsed:?}"
    );
}

#[tokio::test]
async fn a_429_with_only_a_near_ratelimit_reset_is_waited_out() {
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    let double = doubles::start(
        3600,
        Arc::new(move |_| {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                let reset = OffsetDateTime::now_utc().unix_timestamp() + 1;
                Answer::json(429, r#"{"statusCode":429,"error":"Too Many Requests","message":"Global limit has been reached"}"#)
                    .with_header("x-ratelimit-limit", "2")
                    .with_header("x-ratelimit-remaining", "0")
                    .with_header("x-ratelimit-reset", reset.to_string())
            } else {
                Answer::json(200, "[]")
            }
        }),
    )
    .await;
    let client = MgmtClient::new(config_for(&double.base)).unwrap();
    let started = Instant::now();
    client
        .list_methods("auth0|x")
        .await
        .expect("success after the reset");
    assert_eq!(client.rate_limited(), 1);
    assert_eq!(double.seen().len(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn ratelimit_reset_is_read_against_the_injected_clock() {
    let now = datetime!(2030-01-01 00:00:00 UTC);
    let double = doubles::start(
        3600,
        Arc::new(move |_| {
            Answer::json(
                429,
                r#"{"statusCode":429,"error":"Too Many Requests","message":"slow down"}"#,
            )
            .with_header("x-ratelimit-reset", (now.unix_timestamp() + 42).to_string())
        }),
    )
    .await;
    let client =
        MgmtClient::with_clock(config_for(&double.base), Arc::new(ManualClock::new(now))).unwrap();
    let error = client.list_methods("auth0|x").await.unwrap_err();
    match error {
        MgmtError::Busy { retry_after, .. } => assert_eq!(retry_after, Duration::from_secs(42)),
        other => panic!("expected Busy, got {other:?}"),
    }
}

#[tokio::test]
async fn a_429_beyond_the_budget_is_busy() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    client.ensure_token().await.unwrap();
    faults::inject(
        &tenant,
        FaultSpec::status(USERS, 429).method("GET").retry_after(30),
    );
    let started = Instant::now();
    let error = client.list_methods(demo::ALICE_USER_ID).await.unwrap_err();
    match error {
        MgmtError::Busy { op, retry_after } => {
            assert_eq!(op, Operation::ListMethods);
            assert_eq!(
                retry_after,
                Duration::from_secs(30),
                "the server's Retry-After"
            );
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    assert_eq!(
        client.upstream_calls(),
        1,
        "no wait, no retry when the delay is beyond the budget"
    );
    assert_eq!(faults::mgmt_calls(&tenant, "GET", USERS), 1);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "returned at once: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn repeated_429s_exhaust_the_budget_then_busy() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    faults::inject(
        &tenant,
        FaultSpec::status(USERS, 429).method("GET").retry_after(1),
    );
    let error = client.list_methods(demo::ALICE_USER_ID).await.unwrap_err();
    assert!(
        matches!(error, MgmtError::Busy { retry_after, .. } if retry_after == Duration::from_secs(1)),
        "{error:?}"
    );
    // Each wait is 1.25 s (1 s + 25%); a 3 s budget allows two.
    assert_eq!(client.upstream_calls(), 3);
    assert_eq!(client.rate_limited(), 3);
    assert_eq!(faults::mgmt_calls(&tenant, "GET", USERS), 3);
}

#[tokio::test]
async fn a_free_tenant_rate_limit_is_absorbed_by_waiting() {
    // Auth0 Free: 2 burst, 2 per second. Six calls in a row all succeed by honouring the 429s.
    let tenant = Tenant::start_with(|options| {
        options.mgmt_rate_limit = Some(RateLimit {
            count: 2,
            per: Duration::from_secs(1),
        });
    })
    .await;
    let client = tenant.client();
    for _ in 0..6 {
        client
            .get_method(demo::ALICE_USER_ID, "webauthn-roaming|dev_aliceYubiKey0001")
            .await
            .expect("a rate-limited call succeeds after waiting");
    }
    assert!(
        client.rate_limited() >= 1,
        "the limit was hit: {:?}",
        client.metrics()
    );
    assert_eq!(client.upstream_calls(), 6 + client.rate_limited());
}

#[tokio::test]
async fn a_500_on_get_is_retried_then_succeeds() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    faults::inject(
        &tenant,
        FaultSpec::status(USERS, 500).method("GET").times(2),
    );
    client
        .list_methods(demo::ALICE_USER_ID)
        .await
        .expect("third attempt succeeds");
    assert_eq!(client.upstream_calls(), 3);
    assert_eq!(client.metrics().retries, 2);
    assert_eq!(faults::mgmt_calls(&tenant, "GET", USERS), 3);
}

#[tokio::test]
async fn a_500_on_rename_and_delete_is_retried() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    let id = "webauthn-roaming|dev_aliceYubiKey0001";
    faults::inject(
        &tenant,
        FaultSpec::status(USERS, 502).method("PATCH").times(1),
    );
    let renamed = client
        .rename_method(demo::ALICE_USER_ID, id, "Spare key")
        .await
        .expect("rename is idempotent and retried");
    assert_eq!(renamed.name.as_deref(), Some("Spare key"));
    assert_eq!(faults::mgmt_calls(&tenant, "PATCH", USERS), 2);
    faults::inject(
        &tenant,
        FaultSpec::status(USERS, 503).method("DELETE").times(1),
    );
    client
        .delete_method(demo::ALICE_USER_ID, id)
        .await
        .expect("delete is idempotent and retried");
    assert_eq!(faults::mgmt_calls(&tenant, "DELETE", USERS), 2);
}

#[tokio::test]
async fn a_persistent_500_on_get_fails_after_max_attempts() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    faults::inject(&tenant, FaultSpec::status(USERS, 503).method("GET"));
    let error = client.list_methods(demo::ALICE_USER_ID).await.unwrap_err();
    assert!(
        matches!(error, MgmtError::Upstream { status: 503, .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert!(error.body().is_some(), "Auth0's error body is kept");
    assert_eq!(client.upstream_calls(), 3);
    assert_eq!(faults::mgmt_calls(&tenant, "GET", USERS), 3);
}

#[tokio::test]
async fn a_500_on_ticket_creation_is_not_retried() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    faults::inject(
        &tenant,
        FaultSpec::status(TICKETS, 500).method("POST").times(1),
    );
    let error = client
        .create_enrollment_ticket(&ticket_request())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            MgmtError::Upstream {
                status: 500,
                op: Operation::CreateEnrollmentTicket,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        client.upstream_calls(),
        1,
        "a POST that may have reached the server is not repeated"
    );
    assert_eq!(faults::mgmt_calls(&tenant, "POST", TICKETS), 1);
    // The fault was one-shot: the caller's own retry works.
    client
        .create_enrollment_ticket(&ticket_request())
        .await
        .expect("ticket");
}

#[tokio::test]
async fn a_429_on_ticket_creation_is_retried() {
    let tenant = Tenant::start().await;
    let client = tenant.client();
    faults::inject(
        &tenant,
        FaultSpec::status(TICKETS, 429)
            .method("POST")
            .times(1)
            .retry_after(1),
    );
    client
        .create_enrollment_ticket(&ticket_request())
        .await
        .expect("a 429 was not processed, so it is safe to send again");
    assert_eq!(client.upstream_calls(), 2);
    assert_eq!(faults::mgmt_calls(&tenant, "POST", TICKETS), 2);
}

#[tokio::test]
async fn latency_beyond_the_request_timeout_is_a_timeout() {
    let tenant = Tenant::start().await;
    let client = tenant.client_with(|c| {
        c.request_timeout = Duration::from_millis(300);
        c.retry.max_attempts = 2;
    });
    client.ensure_token().await.unwrap();
    faults::inject(
        &tenant,
        FaultSpec::latency(USERS, Duration::from_secs(2)).method("GET"),
    );
    let started = Instant::now();
    let error = client.list_methods(demo::ALICE_USER_ID).await.unwrap_err();
    assert!(
        matches!(
            error,
            MgmtError::Timeout {
                op: Operation::ListMethods
            }
        ),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_eq!(
        client.upstream_calls(),
        2,
        "an idempotent call is tried again after a timeout"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn latency_on_ticket_creation_times_out_without_a_retry() {
    let tenant = Tenant::start().await;
    let client = tenant.client_with(|c| c.request_timeout = Duration::from_millis(300));
    client.ensure_token().await.unwrap();
    faults::inject(
        &tenant,
        FaultSpec::latency(TICKETS, Duration::from_secs(2)).method("POST"),
    );
    let error = client
        .create_enrollment_ticket(&ticket_request())
        .await
        .unwrap_err();
    assert!(matches!(error, MgmtError::Timeout { .. }), "{error:?}");
    assert_eq!(client.upstream_calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_are_bounded() {
    let tenant = Tenant::start().await;
    let client = tenant.client_with(|c| c.max_concurrent_calls = 2);
    client.ensure_token().await.expect("token");
    faults::inject(
        &tenant,
        FaultSpec::latency(USERS, Duration::from_millis(300)).method("GET"),
    );
    let started = Instant::now();
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.list_methods(demo::ALICE_USER_ID).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("each call succeeds, in turn");
    }
    let elapsed = started.elapsed();
    // Six 300 ms calls two at a time take at least three rounds; unbounded they would overlap in one.
    assert!(
        elapsed >= Duration::from_millis(900),
        "6 calls with 2 in flight took only {elapsed:?}"
    );
}
