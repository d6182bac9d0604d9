//! Shared helpers: start a tenant, a browser-like HTTP client, machine-to-machine tokens and JWKS verification.

#![allow(dead_code, unreachable_pub)] // Each test module uses a different subset.

use std::sync::Arc;

use companion_devtenant::clock::ManualClock;
use companion_devtenant::world::demo;
use companion_devtenant::{RunningTenant, TenantOptions};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// A client that plays a browser: cookie store on, redirects off (tests follow them by hand).
pub fn browser() -> reqwest::Client {
    #[allow(clippy::disallowed_methods)] // Tests build their own clients.
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// A tenant with [`TenantOptions::for_test`] and a browser-like client.
pub async fn spawn() -> (RunningTenant, reqwest::Client) {
    spawn_with(TenantOptions::for_test()).await
}

/// A tenant with `options` and a browser-like client.
pub async fn spawn_with(options: TenantOptions) -> (RunningTenant, reqwest::Client) {
    let tenant = companion_devtenant::start(options)
        .await
        .expect("the tenant starts");
    (tenant, browser())
}

/// A tenant whose clock only moves when the returned [`ManualClock`] is advanced.
pub async fn spawn_with_manual_clock() -> (RunningTenant, reqwest::Client, ManualClock) {
    let clock = ManualClock::starting_now();
    let options = TenantOptions {
        clock: Arc::new(clock.clone()),
        ..TenantOptions::for_test()
    };
    let (tenant, client) = spawn_with(options).await;
    (tenant, client, clock)
}

/// A `client_credentials` token of the demo proxy client for the Management API, with all its granted scopes.
pub async fn mgmt_token(tenant: &RunningTenant, client: &reqwest::Client) -> String {
    let response = client
        .post(tenant.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", demo::PROXY_CLIENT_ID),
            ("client_secret", demo::PROXY_CLIENT_SECRET),
            ("audience", &format!("{}/api/v2/", tenant.base_url())),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 200, "client_credentials succeeds");
    let body: Value = response.json().await.expect("token json");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// Verifies an RS256 `token` against the tenant's published JWKS with `iss` = the issuer and `aud` containing
/// `audience`; returns the claims.
pub async fn verify(
    tenant: &RunningTenant,
    client: &reqwest::Client,
    token: &str,
    audience: &str,
) -> Value {
    let jwks: Value = client
        .get(tenant.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks request")
        .json()
        .await
        .expect("jwks json");
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    assert_eq!(header.alg, Algorithm::RS256, "tokens are RS256");
    let kid = header.kid.expect("tokens carry a kid");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the kid is published in the JWKS");
    let key = DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("rsa key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[tenant.issuer()]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("the token verifies against the JWKS")
        .claims
}

/// The claims of a JWT without verifying it (for tokens another check already verified).
pub fn peek(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}
