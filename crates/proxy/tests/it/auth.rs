//! The authentication extractor against real tokens: the bad-token corpus (401, zero upstream calls), the verified
//! token cache, JWKS rotation with rate-limited refetch, and a JWKS outage.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use companion_devtenant::faults::FaultSpec;
use serde_json::json;

use crate::harness::{ALICE, BOB, World};

fn b64(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn the_bad_token_corpus_is_refused_without_upstream_calls() {
    let world = World::start().await;
    let good = world.token(ALICE, None);
    let parts: Vec<&str> = good.split('.').collect();
    let claims = world.claims(ALICE, None);
    let kid = world.tenant.state.keys.current_kid();

    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    let alg_none_signed = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        parts[1],
        parts[2]
    );
    // The classic confusion attack: HS256 with the tenant's public key material as the HMAC secret.
    let jwks = world.tenant.state.keys.jwks(world.now());
    let public_n = jwks["keys"][0]["n"].as_str().expect("n").to_owned();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(public_n.as_bytes()),
    )
    .expect("hs256 token");
    let hs256_jwks = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(jwks.to_string().as_bytes()),
    )
    .expect("hs256 token");

    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!(format!("{}", world.tenant.base_url()));
    let mut other_tenant = claims.clone();
    other_tenant["iss"] = json!("https://evil.example.com/");
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!(format!("{}/api/v2/", world.tenant.base_url()));
    let mut aud_prefix = claims.clone();
    aud_prefix["aud"] = json!("https://passkey-companion/ap");
    let mut expired = claims.clone();
    expired["exp"] = json!(world.now() - 31);
    let mut nbf_future = claims.clone();
    nbf_future["nbf"] = json!(world.now() + 120);
    let mut no_sub = claims.clone();
    no_sub.as_object_mut().expect("object").remove("sub");
    let mut bad_sub = claims.clone();
    bad_sub["sub"] = json!("auth0|../../users");
    let mut string_exp = claims.clone();
    string_exp["exp"] = json!("tomorrow");

    let unknown_kid = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256", "typ": "JWT", "kid": "no-such-key"})),
        parts[1],
        parts[2]
    );
    let no_kid = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256", "typ": "JWT"})),
        parts[1],
        parts[2]
    );
    let bob_payload = URL_SAFE_NO_PAD.encode(world.claims(BOB, Some(0)).to_string());
    let swapped_payload = format!("{}.{}.{}", parts[0], bob_payload, parts[2]);
    let truncated = good[..good.len() - 12].to_owned();
    let m2m = world.sign(&json!({
        "iss": world.tenant.issuer(), "sub": "companion-proxy@clients",
        "aud": format!("{}/api/v2/", world.tenant.base_url()), "iat": world.now(),
        "exp": world.now() + 3600, "gty": "client-credentials", "azp": "companion-proxy"
    }));

    let corpus: Vec<(&str, String)> = vec![
        ("alg none, empty signature", alg_none),
        ("alg none with a signature", alg_none_signed),
        ("HS256 keyed with the public modulus", hs256),
        ("HS256 keyed with the JWKS", hs256_jwks),
        ("issuer without trailing slash", world.sign(&wrong_iss)),
        ("another tenant's issuer", world.sign(&other_tenant)),
        ("Management API audience", world.sign(&wrong_aud)),
        ("audience prefix", world.sign(&aud_prefix)),
        ("expired beyond leeway", world.sign(&expired)),
        ("nbf in the future", world.sign(&nbf_future)),
        ("no sub", world.sign(&no_sub)),
        ("sub with path characters", world.sign(&bad_sub)),
        ("exp not a number", world.sign(&string_exp)),
        ("unknown kid", unknown_kid),
        ("no kid", no_kid),
        ("payload swapped to another user", swapped_payload),
        ("truncated signature", truncated),
        ("two segments", format!("{}.{}", parts[0], parts[1])),
        ("four segments", format!("{good}.x")),
        ("non-base64", "abc.d$f.ghi".to_owned()),
        (
            "padding",
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        ),
        ("garbage", "not-a-jwt".to_owned()),
        ("huge", "a".repeat(20_000)),
        ("M2M token for the Management API", m2m),
    ];
    let before = world.mgmt_calls();
    let upstream_before = world.state.authenticators.mgmt().upstream_calls();
    for (what, token) in &corpus {
        for answer in [
            world.list(token).await,
            world.delete(token, "totp%7Cdev_aliceTotp0000001").await,
            world
                .rename(token, "totp%7Cdev_aliceTotp0000001", "x")
                .await,
            world.enroll(token, "webauthn-roaming").await,
        ] {
            assert_eq!(answer.status, 401, "{what}: {}", answer.body);
            assert_eq!(answer.code(), "invalid_token", "{what}");
            assert_eq!(
                answer.header("www-authenticate").as_deref(),
                Some(r#"Bearer error="invalid_token""#),
                "{what}: RFC 6750 challenge"
            );
        }
    }
    assert_eq!(
        world.mgmt_calls(),
        before,
        "no Management API call for any bad token"
    );
    assert_eq!(
        world.state.authenticators.mgmt().upstream_calls(),
        upstream_before,
        "the proxy sent nothing upstream"
    );
    // Leeway: a token expired 10 s ago is still accepted (30 s leeway).
    let mut recent = claims.clone();
    recent["exp"] = json!(world.now() - 10);
    assert_eq!(
        world.list(&world.sign(&recent)).await.status,
        200,
        "within leeway"
    );
    world.stop().await;
}

#[tokio::test]
async fn a_missing_or_non_bearer_header_gets_a_bare_challenge() {
    let world = World::start().await;
    let answer = world
        .send(reqwest::Method::GET, "/v1/me/authenticators", None, None)
        .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.code(), "invalid_token");
    assert_eq!(
        answer.header("www-authenticate").as_deref(),
        Some("Bearer"),
        "RFC 6750 §3.1: no error code when no credentials were sent"
    );
    let response = world
        .http
        .get(world.url("/v1/me/authenticators"))
        .header("authorization", "Basic YWxpY2U6cHc=")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 401);
    world.stop().await;
}

#[tokio::test]
async fn verified_tokens_are_cached() {
    let world = World::start().await;
    let token = world.token(ALICE, None);
    for _ in 0..5 {
        assert_eq!(world.list(&token).await.status, 200);
    }
    let stats = world.state.verifier.stats();
    assert_eq!(stats.verifications, 1, "RSA once for one token");
    assert_eq!(stats.cache_hits, 4, "the other calls hit the cache");
    // An expired cached token is refused all the same.
    world.clock.advance(Duration::from_secs(3600 + 31));
    let answer = world.list(&token).await;
    assert_eq!(answer.status, 401, "cached entries expire with the token");
    world.stop().await;
}

#[tokio::test]
async fn key_rotation_is_picked_up_with_a_rate_limited_refetch() {
    let world = World::start().await;
    let old_token = world.token(ALICE, None);
    assert_eq!(world.list(&old_token).await.status, 200);
    let fetches = world.state.verifier.stats().jwks_fetches;
    world
        .tenant
        .state
        .keys
        .rotate(world.now())
        .expect("rotation");
    let new_token = world.token(ALICE, None);
    assert_ne!(old_token, new_token);
    // The start-up fetch was less than 30 s ago: an unknown kid does not trigger another fetch yet.
    let answer = world.list(&new_token).await;
    assert_eq!(
        answer.status, 401,
        "unknown kid within the refetch interval"
    );
    assert_eq!(
        world.state.verifier.stats().jwks_fetches,
        fetches,
        "rate-limited: no fetch"
    );
    world.clock.advance(Duration::from_secs(31));
    let answer = world.list(&new_token).await;
    assert_eq!(
        answer.status, 200,
        "refetched on the unknown kid: {}",
        answer.body
    );
    assert_eq!(world.state.verifier.stats().jwks_fetches, fetches + 1);
    // Many unknown kids at once cost at most one fetch per interval.
    world.clock.advance(Duration::from_secs(31));
    let parts: Vec<String> = new_token.split('.').map(str::to_owned).collect();
    let forged: Vec<String> = (0..10)
        .map(|i| {
            format!(
                "{}.{}.{}",
                b64(&json!({"alg": "RS256", "kid": format!("forged-{i}")})),
                parts[1],
                parts[2]
            )
        })
        .collect();
    let statuses = world.concurrent_lists(forged).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(
        world.state.verifier.stats().jwks_fetches,
        fetches + 2,
        "ten unknown kids, one fetch"
    );
    assert_eq!(
        world.list(&old_token).await.status,
        200,
        "the old key is still published"
    );
    world.stop().await;
}

#[tokio::test]
async fn a_jwks_outage_keeps_the_last_good_keys() {
    let world = World::start().await;
    let token = world.token(ALICE, None);
    world.fault(FaultSpec::status("/.well-known/jwks.json", 503));
    // Past the maximum age the proxy tries to refresh, fails, and keeps serving with the keys it has.
    world.clock.advance(Duration::from_secs(11 * 60));
    let fresh_token = world.token(ALICE, None);
    let answer = world.list(&fresh_token).await;
    assert_eq!(
        answer.status, 200,
        "last good key set kept: {}",
        answer.body
    );
    assert!(
        world.state.verifier.stats().jwks_failures >= 1,
        "the refresh was tried"
    );
    assert_eq!(world.list(&token).await.status, 200);
    world.clear_faults();
    world.stop().await;
}

#[tokio::test]
async fn jwks_down_at_start_up_answers_503_then_recovers() {
    let tenant = companion_devtenant::start(companion_devtenant::TenantOptions::for_test())
        .await
        .expect("tenant");
    tenant
        .state
        .faults
        .add(FaultSpec::status("/.well-known/jwks.json", 503))
        .expect("fault");
    let world = World::start_proxy(tenant, |_| {}, true).await;
    let token = world.token(ALICE, None);
    let answer = world.list(&token).await;
    assert_eq!(answer.status, 503, "no keys at all: {}", answer.body);
    assert_eq!(answer.code(), "upstream_unavailable");
    assert!(answer.header("retry-after").is_some());
    let ready = world
        .send(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(ready.status, 503, "not ready without keys");
    assert_eq!(ready.body["jwks"], false);
    world.clear_faults();
    world.clock.advance(Duration::from_secs(31));
    assert_eq!(
        world.list(&token).await.status,
        200,
        "recovered once the JWKS is back"
    );
    let ready = world
        .send(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(ready.status, 200, "ready: {}", ready.body);
    world.stop().await;
}

#[tokio::test]
async fn a_withdrawn_key_is_refused_after_the_periodic_refresh() {
    let options = companion_devtenant::TenantOptions {
        key_grace_seconds: 0,
        ..companion_devtenant::TenantOptions::for_test()
    };
    let tenant = companion_devtenant::start(options).await.expect("tenant");
    let world = World::start_proxy(tenant, |_| {}, true).await;
    // Signed by the current key but never shown to the proxy before the key is withdrawn.
    let unseen = world.token(ALICE, None);
    world
        .tenant
        .state
        .keys
        .rotate(world.now())
        .expect("rotation");
    world.clock.advance(Duration::from_secs(11 * 60));
    let answer = world.list(&unseen).await;
    assert_eq!(
        answer.status, 401,
        "the refreshed key set no longer has the key: {}",
        answer.body
    );
    assert_eq!(
        world.list(&world.token(ALICE, None)).await.status,
        200,
        "the new key works"
    );
    world.stop().await;
}

#[tokio::test]
async fn a_custom_domain_issuer_is_checked_while_the_management_api_stays_on_the_tenant() {
    let world = World::start_with(
        |settings| {
            let jwks = format!("{}/.well-known/jwks.json", settings.tenant_base());
            settings.issuer = companion_proxy::config::Issuer("https://login.example.com/".into());
            settings.jwks_url = jwks.parse().expect("jwks url");
        },
        true,
    )
    .await;
    let mut claims = world.claims(ALICE, None);
    claims["iss"] = serde_json::json!("https://login.example.com/");
    let custom = world.sign(&claims);
    let answer = world.list(&custom).await;
    assert_eq!(
        answer.status, 200,
        "a token from the custom domain is accepted: {}",
        answer.body
    );
    assert!(
        world.mgmt_calls_of("GET") >= 1,
        "the list went to the tenant's Management API"
    );
    let calls = world.mgmt_calls();
    let canonical = world.token(ALICE, None);
    let answer = world.list(&canonical).await;
    assert_eq!(
        answer.status, 401,
        "the tenant's own issuer is not the configured one"
    );
    assert_eq!(
        world.mgmt_calls(),
        calls,
        "a refused token costs no upstream call"
    );
    world.stop().await;
}
