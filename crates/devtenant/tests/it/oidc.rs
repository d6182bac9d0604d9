//! The Authentication API as a generic OAuth client and a browser see it: discovery, JWKS, the code flow with
//! PKCE through the hosted login and MFA pages, refresh-token rotation, client credentials, revocation,
//! `/userinfo` and logout, and the failure cases in Auth0's error shapes.

// Helpers here are test code too: a failed request is a failed test.
#![allow(clippy::unwrap_used)]

use companion_devtenant::TenantOptions;
use companion_devtenant::world::{ClientSeed, demo};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{mgmt_token, spawn, spawn_with, verify};

async fn json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

#[tokio::test]
async fn discovery_and_jwks_describe_the_tenant() {
    let (tenant, client) = spawn().await;
    let (status, doc) = json(
        client
            .get(tenant.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let base = tenant.base_url();
    assert_eq!(
        doc["issuer"],
        format!("{base}/"),
        "issuer is the base URL plus /"
    );
    assert_eq!(doc["authorization_endpoint"], format!("{base}/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(doc["jwks_uri"], format!("{base}/.well-known/jwks.json"));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    let (status, jwks) = json(
        client
            .get(tenant.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "one current key");
    assert_eq!(keys[0]["alg"], "RS256");
    assert_eq!(keys[0]["kid"], tenant.state.keys.current_kid().as_str());
}

#[tokio::test]
async fn client_credentials_issue_a_management_token_with_the_granted_scopes() {
    let (tenant, client) = spawn().await;
    let mgmt = format!("{}/api/v2/", tenant.base_url());
    let token = mgmt_token(&tenant, &client).await;
    let claims = verify(&tenant, &client, &token, &mgmt).await;
    assert_eq!(claims["sub"], format!("{}@clients", demo::PROXY_CLIENT_ID));
    assert_eq!(claims["azp"], demo::PROXY_CLIENT_ID);
    assert_eq!(claims["gty"], "client-credentials");
    assert_eq!(
        claims["scope"],
        companion_protocol::claims::PROXY_MGMT_SCOPES.join(" "),
        "exactly the client grant's scopes"
    );
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 86_400, "Management API tokens live 24 h");

    // JSON bodies work too, and `scope` narrows.
    let response = client
        .post(tenant.url("/oauth/token"))
        .json(&serde_json::json!({
            "grant_type": "client_credentials",
            "client_id": demo::PROXY_CLIENT_ID,
            "client_secret": demo::PROXY_CLIENT_SECRET,
            "audience": mgmt,
            "scope": "read:authentication_methods",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "token responses are not cached"
    );
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86_400);
    assert_eq!(body["scope"], "read:authentication_methods");

    // HTTP Basic client authentication.
    let response = client
        .post(tenant.url("/oauth/token"))
        .basic_auth(demo::PROXY_CLIENT_ID, Some(demo::PROXY_CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials"), ("audience", &mgmt)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "client_secret_basic works");
}

#[tokio::test]
async fn client_credentials_failures_use_auth0_errors() {
    let mut options = TenantOptions::for_test();
    options.world.clients.push(ClientSeed {
        client_id: "ungranted-m2m".to_owned(),
        name: "No grants".to_owned(),
        app_type: "non_interactive".to_owned(),
        grant_types: vec!["client_credentials".to_owned()],
        callbacks: vec![],
        allowed_logout_urls: vec![],
        client_secret: Some("ungranted-secret".to_owned()),
    });
    let (tenant, client) = spawn_with(options).await;
    let mgmt = format!("{}/api/v2/", tenant.base_url());
    let post = |form: Vec<(&'static str, String)>| {
        let client = client.clone();
        let url = tenant.url("/oauth/token");
        async move { json(client.post(url).form(&form).send().await.unwrap()).await }
    };

    let (status, body) = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", "ungranted-m2m".into()),
        ("client_secret", "ungranted-secret".into()),
        ("audience", mgmt.clone()),
    ])
    .await;
    assert_eq!(status, 403, "no client grant: {body}");
    assert_eq!(body["error"], "access_denied");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("Client is not authorized to access"),
        "{body}"
    );

    let (status, body) = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", demo::PROXY_CLIENT_ID.into()),
        ("client_secret", "wrong-secret".into()),
        ("audience", mgmt.clone()),
    ])
    .await;
    assert_eq!(status, 401, "wrong secret: {body}");
    assert_eq!(body["error"], "invalid_client");
    assert!(
        !body.to_string().contains("wrong-secret") && !body.to_string().contains("demo-proxy"),
        "no secret in the error"
    );

    let (status, body) = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", "no-such-client".into()),
        ("client_secret", "x".into()),
        ("audience", mgmt.clone()),
    ])
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::UNAUTHORIZED, &Value::from("invalid_client"))
    );

    let (status, body) = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", demo::PROXY_CLIENT_ID.into()),
        ("client_secret", demo::PROXY_CLIENT_SECRET.into()),
        ("audience", "https://unknown.example/api".into()),
    ])
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "access_denied");
    assert_eq!(
        body["error_description"],
        "Service not found: https://unknown.example/api"
    );

    let (status, body) = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", demo::PROXY_CLIENT_ID.into()),
        ("client_secret", demo::PROXY_CLIENT_SECRET.into()),
        ("audience", mgmt.clone()),
        ("scope", "read:users".into()),
    ])
    .await;
    assert_eq!(status, 403, "scopes beyond the grant: {body}");
    assert_eq!(body["error"], "access_denied");

    let (status, body) = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", demo::DESKTOP_CLIENT_ID.into()),
        ("audience", mgmt.clone()),
    ])
    .await;
    assert_eq!(
        status, 403,
        "a public client cannot use client credentials: {body}"
    );
    assert_eq!(body["error"], "unauthorized_client");

    let (status, body) = post(vec![
        ("grant_type", "password".into()),
        ("client_id", demo::DESKTOP_CLIENT_ID.into()),
    ])
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "unsupported_grant_type");

    let (status, body) = post(vec![("client_id", demo::DESKTOP_CLIENT_ID.into())]).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &Value::from("invalid_request"))
    );
}

// ---------------------------------------------------------------------------------------------------------------
// The code flow, played by an HTTP client with a cookie store and redirects off.

use base64::Engine as _;
use companion_devtenant::RunningTenant;
use companion_protocol::claims::{AUTH_TIME_CLAIM, MFA_ACR, MFA_TIME_CLAIM};
use sha2::Digest as _;

const API: &str = demo::API_AUDIENCE;

/// One authorization request's client-side secrets.
struct Pkce {
    verifier: String,
    challenge: String,
}

impl Pkce {
    fn new() -> Self {
        let verifier = format!("verifier-{}-{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

/// The standard parameters of a desktop login; `extra` overrides or adds.
fn authorize_url(tenant: &RunningTenant, pkce: &Pkce, extra: &[(&str, &str)]) -> reqwest::Url {
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", demo::DESKTOP_CLIENT_ID),
        ("redirect_uri", demo::FIRST_CALLBACK),
        ("scope", "openid profile email offline_access"),
        ("audience", API),
        ("state", "client-state-1"),
        ("nonce", "nonce-1"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(key, _)| key != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    let mut url = tenant.url("/authorize");
    url.query_pairs_mut().extend_pairs(params);
    url
}

fn location(response: &reqwest::Response) -> String {
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "expected a redirect from {}",
        response.url()
    );
    response.headers()["location"]
        .to_str()
        .expect("ascii location")
        .to_owned()
}

fn param(url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).expect("absolute url");
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Follows a tenant-relative redirect (`/u/login?...`) to an absolute URL.
fn on_tenant(tenant: &RunningTenant, location: &str) -> reqwest::Url {
    assert!(location.starts_with('/'), "a tenant page: {location}");
    tenant.url(location)
}

/// GET /authorize, expecting the login page; returns the transaction id.
async fn start_login(
    tenant: &RunningTenant,
    client: &reqwest::Client,
    url: reqwest::Url,
) -> String {
    let response = client.get(url).send().await.unwrap();
    let login = location(&response);
    assert!(login.starts_with("/u/login?state="), "{login}");
    let page = client.get(on_tenant(tenant, &login)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"name="username""#) && html.contains(r#"name="password""#),
        "{html}"
    );
    param(tenant.url(&login).as_ref(), "state").expect("transaction id")
}

async fn submit_login(
    tenant: &RunningTenant,
    client: &reqwest::Client,
    tx: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(tenant.url("/u/login"))
        .form(&[("state", tx), ("username", email), ("password", password)])
        .send()
        .await
        .unwrap()
}

async fn exchange(
    tenant: &RunningTenant,
    client: &reqwest::Client,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> (StatusCode, Value) {
    json(
        client
            .post(tenant.url("/oauth/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", demo::DESKTOP_CLIENT_ID),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", redirect_uri),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn refresh(
    tenant: &RunningTenant,
    client: &reqwest::Client,
    token: &str,
) -> (StatusCode, Value) {
    json(
        client
            .post(tenant.url("/oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", demo::DESKTOP_CLIENT_ID),
                ("refresh_token", token),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Bob's whole login up to the callback; returns the callback URL.
async fn bob_login(
    tenant: &RunningTenant,
    client: &reqwest::Client,
    pkce: &Pkce,
    extra: &[(&str, &str)],
) -> String {
    let tx = start_login(tenant, client, authorize_url(tenant, pkce, extra)).await;
    let response = submit_login(tenant, client, &tx, demo::BOB_EMAIL, demo::PASSWORD).await;
    location(&response)
}

fn totp_now(tenant: &RunningTenant) -> String {
    let secret = totp_rs::Secret::Encoded(demo::ALICE_TOTP_SECRET.to_owned())
        .to_bytes()
        .unwrap();
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret);
    totp.generate(u64::try_from(tenant.state.clock.unix()).unwrap())
}

/// Alice's login up to the MFA page; returns the transaction id.
async fn alice_to_mfa(
    tenant: &RunningTenant,
    client: &reqwest::Client,
    pkce: &Pkce,
    extra: &[(&str, &str)],
) -> String {
    let tx = start_login(tenant, client, authorize_url(tenant, pkce, extra)).await;
    let response = submit_login(tenant, client, &tx, demo::ALICE_EMAIL, demo::PASSWORD).await;
    let mfa = location(&response);
    assert_eq!(
        mfa,
        format!("/u/mfa?state={tx}"),
        "MFA is asked after the password"
    );
    tx
}

#[tokio::test]
async fn bob_signs_in_with_a_password_and_gets_verifiable_tokens() {
    let (tenant, client) = spawn().await;
    let pkce = Pkce::new();
    let tx = start_login(
        &tenant,
        &client,
        authorize_url(&tenant, &pkce, &[("login_hint", demo::BOB_EMAIL)]),
    )
    .await;
    let page = client
        .get(tenant.url(&format!("/u/login?state={tx}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!(r#"value="{}""#, demo::BOB_EMAIL)),
        "login_hint prefills the username"
    );

    let wrong = submit_login(&tenant, &client, &tx, demo::BOB_EMAIL, "not-the-password").await;
    assert_eq!(wrong.status(), 400);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Wrong email or password"),
        "the error is on the page"
    );
    let unknown = submit_login(&tenant, &client, &tx, "nobody@example.com", demo::PASSWORD).await;
    assert!(
        unknown
            .text()
            .await
            .unwrap()
            .contains("Wrong email or password"),
        "same message for unknown users"
    );

    let response = submit_login(&tenant, &client, &tx, demo::BOB_EMAIL, demo::PASSWORD).await;
    let callback = location(&response);
    assert!(callback.starts_with(demo::FIRST_CALLBACK), "{callback}");
    assert_eq!(
        param(&callback, "state").as_deref(),
        Some("client-state-1"),
        "state is echoed"
    );
    let code = param(&callback, "code").expect("a code");

    let (status, body) = exchange(
        &tenant,
        &client,
        &code,
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600, "the API's token lifetime");
    assert_eq!(body["scope"], "openid profile email offline_access");
    let access = verify(
        &tenant,
        &client,
        body["access_token"].as_str().unwrap(),
        API,
    )
    .await;
    assert_eq!(access["sub"], demo::BOB_USER_ID);
    assert_eq!(access["azp"], demo::DESKTOP_CLIENT_ID);
    assert_eq!(
        access["aud"],
        serde_json::json!([API, format!("{}/userinfo", tenant.base_url())]),
        "openid adds the userinfo audience"
    );
    assert!(
        access[AUTH_TIME_CLAIM].is_i64(),
        "namespaced auth_time: {access}"
    );
    assert!(
        access.get(MFA_TIME_CLAIM).is_none(),
        "no MFA happened: {access}"
    );
    let claims: companion_protocol::claims::AccessTokenClaims =
        serde_json::from_value(access.clone()).expect("the proxy's claim type parses it");
    assert!(claims.aud.contains(API));

    let id = verify(
        &tenant,
        &client,
        body["id_token"].as_str().unwrap(),
        demo::DESKTOP_CLIENT_ID,
    )
    .await;
    assert_eq!(id["sub"], demo::BOB_USER_ID);
    assert_eq!(id["nonce"], "nonce-1", "nonce from /authorize");
    assert_eq!(id["email"], demo::BOB_EMAIL);
    assert_eq!(id["name"], "Bob Example");
    assert!(
        id.get("amr").is_none() && id.get("acr").is_none(),
        "no MFA: {id}"
    );
    assert!(
        id.get("auth_time").is_none(),
        "auth_time only when asked: {id}"
    );
    assert!(
        body["refresh_token"].is_string(),
        "offline_access gives a refresh token"
    );

    let userinfo = client
        .get(tenant.url("/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let (status, profile) = json(userinfo).await;
    assert_eq!(status, 200);
    assert_eq!(profile["sub"], demo::BOB_USER_ID);
    assert_eq!(profile["email"], demo::BOB_EMAIL);

    // The SSO session answers the next /authorize without the login page.
    let again = Pkce::new();
    let response = client
        .get(authorize_url(&tenant, &again, &[]))
        .send()
        .await
        .unwrap();
    let callback = location(&response);
    assert!(
        callback.starts_with(demo::FIRST_CALLBACK),
        "SSO: {callback}"
    );
    let code = param(&callback, "code").unwrap();
    let (status, body) = exchange(
        &tenant,
        &client,
        &code,
        &again.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // prompt=login forces the form, and asks for auth_time in the ID token.
    let forced = Pkce::new();
    let callback = bob_login(&tenant, &client, &forced, &[("prompt", "login")]).await;
    let (status, body) = exchange(
        &tenant,
        &client,
        &param(&callback, "code").unwrap(),
        &forced.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = verify(
        &tenant,
        &client,
        body["id_token"].as_str().unwrap(),
        demo::DESKTOP_CLIENT_ID,
    )
    .await;
    assert!(
        id["auth_time"].is_i64(),
        "prompt=login adds auth_time: {id}"
    );
}

#[tokio::test]
async fn alice_passes_a_totp_challenge_and_the_tokens_say_so() {
    let (tenant, client) = spawn().await;
    let pkce = Pkce::new();
    let extra = [("acr_values", MFA_ACR), ("max_age", "0")];
    let tx = alice_to_mfa(&tenant, &client, &pkce, &extra).await;
    let page = client
        .get(tenant.url(&format!("/u/mfa?state={tx}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"name="code""#), "a TOTP field");
    assert!(
        page.contains(r#"name="recovery_code""#),
        "a recovery-code field"
    );

    let wrong = client
        .post(tenant.url("/u/mfa"))
        .form(&[("state", tx.as_str()), ("code", "000000")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    assert!(
        wrong.text().await.unwrap().contains("Wrong code"),
        "error on the page"
    );

    let response = client
        .post(tenant.url("/u/mfa"))
        .form(&[("state", tx.as_str()), ("code", &totp_now(&tenant))])
        .send()
        .await
        .unwrap();
    let callback = location(&response);
    let code = param(&callback, "code").expect("code");
    let (status, body) = exchange(
        &tenant,
        &client,
        &code,
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = verify(
        &tenant,
        &client,
        body["id_token"].as_str().unwrap(),
        demo::DESKTOP_CLIENT_ID,
    )
    .await;
    assert_eq!(id["amr"], serde_json::json!(["mfa"]), "{id}");
    assert_eq!(id["acr"], MFA_ACR);
    assert!(id["auth_time"].is_i64(), "max_age adds auth_time");
    let access = verify(
        &tenant,
        &client,
        body["access_token"].as_str().unwrap(),
        API,
    )
    .await;
    let mfa_time = access[MFA_TIME_CLAIM].as_i64().expect("mfa_time after MFA");
    assert!(
        (mfa_time - tenant.state.clock.unix()).abs() < 60,
        "mfa_time is now"
    );
    assert_eq!(access[AUTH_TIME_CLAIM], id["auth_time"]);
    let last = tenant.state.store.read(|s| {
        s.user(demo::ALICE_USER_ID).unwrap().methods[0]
            .method
            .last_auth_at
            .clone()
    });
    assert_ne!(
        last.as_deref(),
        Some("2026-11-20T08:30:00.000Z"),
        "last_auth_at of the TOTP method moved"
    );

    // A refresh keeps mfa_time in the access token but puts no amr into the ID token.
    let (status, refreshed) =
        refresh(&tenant, &client, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{refreshed}");
    let id = verify(
        &tenant,
        &client,
        refreshed["id_token"].as_str().unwrap(),
        demo::DESKTOP_CLIENT_ID,
    )
    .await;
    assert!(id.get("amr").is_none(), "no amr after a refresh: {id}");
    let access = verify(
        &tenant,
        &client,
        refreshed["access_token"].as_str().unwrap(),
        API,
    )
    .await;
    assert_eq!(access[MFA_TIME_CLAIM], mfa_time);

    // The session remembers the MFA: a step-up without max_age goes straight back.
    let sso = Pkce::new();
    let response = client
        .get(authorize_url(&tenant, &sso, &[("acr_values", MFA_ACR)]))
        .send()
        .await
        .unwrap();
    assert!(location(&response).starts_with(demo::FIRST_CALLBACK));
}

#[tokio::test]
async fn bob_without_mfa_methods_skips_the_challenge_even_when_asked() {
    let (tenant, client) = spawn().await;
    let pkce = Pkce::new();
    let callback = bob_login(&tenant, &client, &pkce, &[("acr_values", MFA_ACR)]).await;
    let (status, body) = exchange(
        &tenant,
        &client,
        &param(&callback, "code").unwrap(),
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = verify(
        &tenant,
        &client,
        body["id_token"].as_str().unwrap(),
        demo::DESKTOP_CLIENT_ID,
    )
    .await;
    assert!(id.get("amr").is_none(), "no MFA method, no amr: {id}");
}

#[tokio::test]
async fn the_tenant_policy_asks_for_mfa_without_acr_values() {
    let mut options = TenantOptions::for_test();
    options.world.tenant.mfa_policies = vec!["all-applications".to_owned()];
    let (tenant, client) = spawn_with(options).await;
    let pkce = Pkce::new();
    alice_to_mfa(&tenant, &client, &pkce, &[]).await;
}

#[tokio::test]
async fn a_recovery_code_works_once_and_is_replaced() {
    let (tenant, client) = spawn().await;
    let pkce = Pkce::new();
    let tx = alice_to_mfa(&tenant, &client, &pkce, &[("acr_values", MFA_ACR)]).await;
    let response = client
        .post(tenant.url("/u/mfa"))
        .form(&[
            ("state", tx.as_str()),
            ("recovery_code", demo::ALICE_RECOVERY_CODE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the new code is shown");
    let html = response.text().await.unwrap();
    let new_code = html
        .split(r#"<code id="recovery-code">"#)
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .expect("the new recovery code on the page")
        .to_owned();
    assert_ne!(new_code, demo::ALICE_RECOVERY_CODE);
    let href = html
        .split(r#"<a href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a continue link")
        .replace("&amp;", "&");
    assert!(href.starts_with(demo::FIRST_CALLBACK), "{href}");
    let (status, body) = exchange(
        &tenant,
        &client,
        &param(&href, "code").unwrap(),
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = verify(
        &tenant,
        &client,
        body["id_token"].as_str().unwrap(),
        demo::DESKTOP_CLIENT_ID,
    )
    .await;
    assert_eq!(id["amr"], serde_json::json!(["mfa"]));

    // A fresh browser: the old code is refused, the new one works.
    let client = crate::support::browser();
    let pkce = Pkce::new();
    let tx = alice_to_mfa(&tenant, &client, &pkce, &[("acr_values", MFA_ACR)]).await;
    let reused = client
        .post(tenant.url("/u/mfa"))
        .form(&[
            ("state", tx.as_str()),
            ("recovery_code", demo::ALICE_RECOVERY_CODE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 400, "a used recovery code is refused");
    assert!(
        reused
            .text()
            .await
            .unwrap()
            .contains("Invalid recovery code")
    );
    let response = client
        .post(tenant.url("/u/mfa"))
        .form(&[("state", tx.as_str()), ("recovery_code", new_code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the replacement code works");
}

/// Asserts a redirect back to the first callback with `error` and the echoed state.
fn assert_error_redirect(response: &reqwest::Response, error: &str) {
    let to = location(response);
    assert!(to.starts_with(demo::FIRST_CALLBACK), "{to}");
    assert_eq!(param(&to, "error").as_deref(), Some(error), "{to}");
    assert!(param(&to, "error_description").is_some(), "{to}");
    assert_eq!(
        param(&to, "state").as_deref(),
        Some("client-state-1"),
        "{to}"
    );
    assert!(param(&to, "code").is_none(), "{to}");
}

#[tokio::test]
async fn authorize_refuses_bad_requests_like_auth0() {
    let (tenant, client) = spawn().await;
    let pkce = Pkce::new();
    let get = |url: reqwest::Url| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap() }
    };

    for (case, extra) in [
        ("plain", vec![("code_challenge_method", "plain")]),
        ("no method", vec![("code_challenge_method", "")]),
        ("no challenge", vec![("code_challenge", "")]),
        ("short challenge", vec![("code_challenge", "abc")]),
        ("bad max_age", vec![("max_age", "soon")]),
    ] {
        let response = get(authorize_url(&tenant, &pkce, &extra)).await;
        assert_eq!(response.status(), 302, "{case}");
        assert_error_redirect(&response, "invalid_request");
    }
    let response = get(authorize_url(&tenant, &pkce, &[("response_type", "token")])).await;
    assert_error_redirect(&response, "unsupported_response_type");
    let response = get(authorize_url(
        &tenant,
        &pkce,
        &[("audience", "https://unknown.example/")],
    ))
    .await;
    assert_error_redirect(&response, "access_denied");
    let response = get(authorize_url(&tenant, &pkce, &[("prompt", "none")])).await;
    assert_error_redirect(&response, "login_required");

    for bad in [
        "http://127.0.0.1:53190/callback",
        "http://127.0.0.1:53180/callback/",
        "http://127.0.0.1:53180/callbacks",
        "http://localhost:53180/callback",
        "https://127.0.0.1:53180/callback",
        "http://127.0.0.1:53180/callback?x=1",
        "https://evil.example/callback",
    ] {
        let response = get(authorize_url(&tenant, &pkce, &[("redirect_uri", bad)])).await;
        assert_eq!(response.status(), 400, "{bad} is refused");
        assert!(
            response.headers().get("location").is_none(),
            "never redirects to {bad}"
        );
        let html = response.text().await.unwrap();
        assert!(html.contains("Callback URL mismatch"), "{html}");
    }
    let response = get(authorize_url(
        &tenant,
        &pkce,
        &[("client_id", "no-such-client")],
    ))
    .await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    let html = response.text().await.unwrap();
    assert!(html.contains("Unknown client"), "{html}");
    let response = get(authorize_url(
        &tenant,
        &pkce,
        &[("client_id", "<script>x</script>")],
    ))
    .await;
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script>x"), "client ids are escaped");

    // The machine-to-machine client cannot log users in.
    let mut url = authorize_url(&tenant, &pkce, &[("client_id", demo::PROXY_CLIENT_ID)]);
    url.query_pairs_mut().append_pair("x", "1");
    let response = get(url).await;
    assert_eq!(response.status(), 400, "the proxy client has no callbacks");
}

#[tokio::test]
async fn code_exchange_checks_verifier_redirect_client_and_single_use() {
    let (tenant, client) = spawn().await;

    // Wrong verifier.
    let pkce = Pkce::new();
    let callback = bob_login(&tenant, &client, &pkce, &[]).await;
    let (status, body) = exchange(
        &tenant,
        &client,
        &param(&callback, "code").unwrap(),
        &Pkce::new().verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "Failed to verify code verifier");

    // A different redirect_uri at the token endpoint.
    let pkce = Pkce::new();
    let response = client
        .get(authorize_url(&tenant, &pkce, &[]))
        .send()
        .await
        .unwrap();
    let code = param(&location(&response), "code").expect("SSO code");
    let (status, body) = exchange(
        &tenant,
        &client,
        &code,
        &pkce.verifier,
        "http://127.0.0.1:53181/callback",
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::FORBIDDEN, &Value::from("invalid_grant")),
        "{body}"
    );

    // Another client.
    let pkce = Pkce::new();
    let response = client
        .get(authorize_url(&tenant, &pkce, &[]))
        .send()
        .await
        .unwrap();
    let code = param(&location(&response), "code").unwrap();
    let (status, body) = json(
        client
            .post(tenant.url("/oauth/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", demo::PROXY_CLIENT_ID),
                ("client_secret", demo::PROXY_CLIENT_SECRET),
                ("code", &code),
                ("code_verifier", &pkce.verifier),
                ("redirect_uri", demo::FIRST_CALLBACK),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // Reuse: the second exchange fails and revokes the refresh token of the first. JSON bodies work too.
    let pkce = Pkce::new();
    let response = client
        .get(authorize_url(&tenant, &pkce, &[]))
        .send()
        .await
        .unwrap();
    let code = param(&location(&response), "code").unwrap();
    let request = serde_json::json!({
        "grant_type": "authorization_code",
        "client_id": demo::DESKTOP_CLIENT_ID,
        "code": code,
        "code_verifier": pkce.verifier,
        "redirect_uri": demo::FIRST_CALLBACK,
    });
    let (status, first) = json(
        client
            .post(tenant.url("/oauth/token"))
            .json(&request)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let (status, body) = json(
        client
            .post(tenant.url("/oauth/token"))
            .json(&request)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "Invalid authorization code");
    let (status, body) = refresh(&tenant, &client, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 403, "code reuse revoked the refresh token: {body}");

    // Garbage code, missing verifier.
    let (status, body) = exchange(
        &tenant,
        &client,
        "not-a-code",
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::FORBIDDEN, &Value::from("invalid_grant"))
    );
    let pkce = Pkce::new();
    let response = client
        .get(authorize_url(&tenant, &pkce, &[]))
        .send()
        .await
        .unwrap();
    let code = param(&location(&response), "code").unwrap();
    let (status, body) = json(
        client
            .post(tenant.url("/oauth/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", demo::DESKTOP_CLIENT_ID),
                ("code", &code),
                ("redirect_uri", demo::FIRST_CALLBACK),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &Value::from("invalid_request")),
        "{body}"
    );
}

#[tokio::test]
async fn codes_expire_after_a_minute_of_tenant_time() {
    let (tenant, client, clock) = crate::support::spawn_with_manual_clock().await;
    let pkce = Pkce::new();
    let callback = bob_login(&tenant, &client, &pkce, &[]).await;
    clock.advance(std::time::Duration::from_secs(61));
    let (status, body) = exchange(
        &tenant,
        &client,
        &param(&callback, "code").unwrap(),
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    // Within the minute it works.
    let pkce = Pkce::new();
    let response = client
        .get(authorize_url(&tenant, &pkce, &[]))
        .send()
        .await
        .unwrap();
    let code = param(&location(&response), "code").unwrap();
    clock.advance(std::time::Duration::from_secs(50));
    let (status, body) = exchange(
        &tenant,
        &client,
        &code,
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn max_age_forces_a_new_login_when_the_session_is_older() {
    let (tenant, client, clock) = crate::support::spawn_with_manual_clock().await;
    let pkce = Pkce::new();
    let callback = bob_login(&tenant, &client, &pkce, &[]).await;
    let first_auth = tenant.state.clock.unix();
    assert!(param(&callback, "code").is_some());
    clock.advance(std::time::Duration::from_secs(120));
    let response = client
        .get(authorize_url(&tenant, &Pkce::new(), &[("max_age", "300")]))
        .send()
        .await
        .unwrap();
    assert!(
        location(&response).starts_with(demo::FIRST_CALLBACK),
        "session young enough"
    );
    let response = client
        .get(authorize_url(&tenant, &Pkce::new(), &[("max_age", "60")]))
        .send()
        .await
        .unwrap();
    assert!(
        location(&response).starts_with("/u/login"),
        "session too old: log in again"
    );
    let response = client
        .get(authorize_url(
            &tenant,
            &Pkce::new(),
            &[("max_age", "60"), ("prompt", "none")],
        ))
        .send()
        .await
        .unwrap();
    assert_error_redirect(&response, "login_required");

    let pkce = Pkce::new();
    let callback = bob_login(&tenant, &client, &pkce, &[("max_age", "60")]).await;
    let (status, body) = exchange(
        &tenant,
        &client,
        &param(&callback, "code").unwrap(),
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = crate::support::peek(body["id_token"].as_str().unwrap());
    assert_eq!(
        id["auth_time"],
        first_auth + 120,
        "auth_time is the new login"
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let (tenant, client, clock) = crate::support::spawn_with_manual_clock().await;
    let pkce = Pkce::new();
    let callback = bob_login(&tenant, &client, &pkce, &[]).await;
    let (_, body) = exchange(
        &tenant,
        &client,
        &param(&callback, "code").unwrap(),
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    let rt1 = body["refresh_token"].as_str().unwrap().to_owned();
    let stored = tenant
        .state
        .store
        .read(|s| s.refresh_tokens.keys().cloned().collect::<Vec<_>>());
    assert!(
        !stored.contains(&rt1),
        "refresh tokens are stored by digest only"
    );

    let (status, second) = refresh(&tenant, &client, &rt1).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "rotation returns a new refresh token");
    let access = verify(
        &tenant,
        &client,
        second["access_token"].as_str().unwrap(),
        API,
    )
    .await;
    assert_eq!(access["sub"], demo::BOB_USER_ID);
    let (status, third) = refresh(&tenant, &client, &rt2).await;
    assert_eq!(status, 200, "{third}");
    let rt3 = third["refresh_token"].as_str().unwrap().to_owned();

    let (status, body) = refresh(&tenant, &client, &rt1).await;
    assert_eq!(status, 403, "a rotated token is refused: {body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = refresh(&tenant, &client, &rt3).await;
    assert_eq!(status, 403, "reuse revoked the whole family: {body}");

    // Absolute expiry: 30 days, not extended by rotation.
    let pkce = Pkce::new();
    let response = client
        .get(authorize_url(&tenant, &pkce, &[]))
        .send()
        .await
        .unwrap();
    let code = param(&location(&response), "code").unwrap();
    let (_, body) = exchange(
        &tenant,
        &client,
        &code,
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    let mut rt = body["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        clock.advance(std::time::Duration::from_secs(14 * 24 * 3600));
        let (status, body) = refresh(&tenant, &client, &rt).await;
        assert_eq!(status, 200, "{body}");
        rt = body["refresh_token"].as_str().unwrap().to_owned();
    }
    clock.advance(std::time::Duration::from_secs(3 * 24 * 3600));
    let (status, body) = refresh(&tenant, &client, &rt).await;
    assert_eq!(status, 403, "the family expired after 30 days: {body}");

    // Another client cannot use it; a made-up token is refused.
    let (status, _) = refresh(&tenant, &client, "made-up").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn revoke_ends_the_refresh_token_family() {
    let (tenant, client) = spawn().await;
    let pkce = Pkce::new();
    let callback = bob_login(&tenant, &client, &pkce, &[]).await;
    let (_, body) = exchange(
        &tenant,
        &client,
        &param(&callback, "code").unwrap(),
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    let rt1 = body["refresh_token"].as_str().unwrap().to_owned();
    let (_, second) = refresh(&tenant, &client, &rt1).await;
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();

    let response = client
        .post(tenant.url("/oauth/revoke"))
        .json(&serde_json::json!({"client_id": demo::DESKTOP_CLIENT_ID, "token": rt1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().is_empty(), "empty body");
    let (status, body) = refresh(&tenant, &client, &rt2).await;
    assert_eq!(status, 403, "revoking one token revoked its family: {body}");

    let response = client
        .post(tenant.url("/oauth/revoke"))
        .form(&[("client_id", demo::DESKTOP_CLIENT_ID), ("token", "unknown")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "unknown tokens answer 200 too");
    let (status, body) = json(
        client
            .post(tenant.url("/oauth/revoke"))
            .form(&[("client_id", "nope"), ("token", "unknown")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::UNAUTHORIZED, &Value::from("invalid_client"))
    );
}

#[tokio::test]
async fn logout_ends_the_session_and_checks_return_to() {
    let (tenant, client) = spawn().await;
    bob_login(&tenant, &client, &Pkce::new(), &[]).await;
    let response = client
        .get(authorize_url(&tenant, &Pkce::new(), &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert!(
        location(&response).starts_with(demo::FIRST_CALLBACK),
        "silent login with a session"
    );

    let mut bad = tenant.url("/v2/logout");
    bad.query_pairs_mut()
        .append_pair("client_id", demo::DESKTOP_CLIENT_ID)
        .append_pair("returnTo", "https://evil.example/");
    let response = client.get(bad).send().await.unwrap();
    assert_eq!(
        response.status(),
        400,
        "returnTo must be an allowed logout URL"
    );
    assert!(response.headers().get("location").is_none());

    let mut good = tenant.url("/v2/logout");
    good.query_pairs_mut()
        .append_pair("client_id", demo::DESKTOP_CLIENT_ID)
        .append_pair("returnTo", "http://127.0.0.1:53180/signed-out");
    let response = client.get(good).send().await.unwrap();
    assert_eq!(location(&response), "http://127.0.0.1:53180/signed-out");
    let response = client
        .get(authorize_url(&tenant, &Pkce::new(), &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert_error_redirect(&response, "login_required");

    let response = client.get(tenant.url("/v2/logout")).send().await.unwrap();
    assert_eq!(response.status(), 200, "a signed-out page without returnTo");
}

#[tokio::test]
async fn userinfo_wants_a_user_token_for_its_audience() {
    let (tenant, client) = spawn().await;
    let response = client.get(tenant.url("/userinfo")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let m2m = mgmt_token(&tenant, &client).await;
    let response = client
        .get(tenant.url("/userinfo"))
        .bearer_auth(&m2m)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "a Management API token is not for /userinfo"
    );

    // Without an audience the access token is only good for /userinfo.
    let pkce = Pkce::new();
    let callback = bob_login(
        &tenant,
        &client,
        &pkce,
        &[("audience", ""), ("scope", "openid email")],
    )
    .await;
    let (status, body) = exchange(
        &tenant,
        &client,
        &param(&callback, "code").unwrap(),
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    let access = body["access_token"].as_str().unwrap();
    verify(
        &tenant,
        &client,
        access,
        &format!("{}/userinfo", tenant.base_url()),
    )
    .await;
    let (status, profile) = json(
        client
            .get(tenant.url("/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(profile["email"], demo::BOB_EMAIL);
    assert!(profile.get("name").is_none(), "no profile scope: {profile}");
}

#[tokio::test]
async fn oidc_logout_redirects_with_state_to_allowed_urls_only() {
    let (tenant, client) = spawn().await;
    let pkce = Pkce::new();
    let callback = bob_login(&tenant, &client, &pkce, &[]).await;
    let (_, body) = exchange(
        &tenant,
        &client,
        &param(&callback, "code").unwrap(),
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    let id_token = body["id_token"].as_str().unwrap();

    let mut bad = tenant.url("/oidc/logout");
    bad.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "https://evil.example/");
    let response = client.get(bad).send().await.unwrap();
    assert_eq!(response.status(), 400);

    let mut good = tenant.url("/oidc/logout");
    good.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair(
            "post_logout_redirect_uri",
            "http://127.0.0.1:53180/signed-out",
        )
        .append_pair("state", "bye");
    let response = client.get(good).send().await.unwrap();
    assert_eq!(
        location(&response),
        "http://127.0.0.1:53180/signed-out?state=bye"
    );
    let response = client
        .get(authorize_url(&tenant, &Pkce::new(), &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert_error_redirect(&response, "login_required");
}

#[tokio::test]
async fn the_mfa_page_offers_webauthn_for_stored_credentials_and_survives_garbage() {
    use companion_devtenant::store::MethodSecret;
    let (tenant, client) = spawn().await;
    // A stored credential (public data only) on alice's security key, as an enrollment would leave it.
    let credential = serde_json::json!({"cred": {"cred_id": "AAEC", "cred": {"type_": "ES256", "key": {"EC_EC2": {"curve": "SECP256R1", "x": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc", "y": "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk"}}}, "counter": 0, "transports": null, "user_verified": false, "backup_eligible": false, "backup_state": false, "registration_policy": "preferred", "extensions": {"cred_protect": "NotRequested", "hmac_create_secret": "NotRequested", "appid": "NotRequested", "cred_props": "Ignored"}, "attestation": {"data": "None", "metadata": "None"}, "attestation_format": "none"}});
    tenant.state.store.write(|s| {
        let alice = s.user_mut(demo::ALICE_USER_ID).unwrap();
        alice.methods[1].secret = Some(MethodSecret::Webauthn { credential });
    });
    let tx = alice_to_mfa(&tenant, &client, &Pkce::new(), &[("acr_values", MFA_ACR)]).await;
    let page = client
        .get(tenant.url(&format!("/u/mfa?state={tx}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"data-webauthn="get""#),
        "a WebAuthn button: {page}"
    );
    let ceremony = page
        .split(r#"name="ceremony" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a ceremony id")
        .to_owned();
    let response = client
        .post(tenant.url("/u/mfa"))
        .form(&[
            ("state", tx.as_str()),
            ("ceremony", &ceremony),
            ("credential", "{\"not\": \"a credential\"}"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        400,
        "a bad assertion is refused on the page"
    );
    assert!(response.text().await.unwrap().contains("error-message"));
    // The transaction is still usable with another method.
    let response = client
        .post(tenant.url("/u/mfa"))
        .form(&[("state", tx.as_str()), ("code", &totp_now(&tenant))])
        .send()
        .await
        .unwrap();
    assert!(location(&response).starts_with(demo::FIRST_CALLBACK));
    let response = client
        .post(tenant.url("/u/mfa"))
        .form(&[("state", tx.as_str()), ("code", &totp_now(&tenant))])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        400,
        "a finished transaction cannot be replayed"
    );
}

#[tokio::test]
async fn refresh_tokens_survive_a_restart_with_a_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.json");
    let options = || TenantOptions {
        state_file: Some(state_file.clone()),
        ..TenantOptions::for_test()
    };
    let (tenant, client) = spawn_with(options()).await;
    let pkce = Pkce::new();
    let callback = bob_login(&tenant, &client, &pkce, &[]).await;
    let (_, body) = exchange(
        &tenant,
        &client,
        &param(&callback, "code").unwrap(),
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    let rt = body["refresh_token"].as_str().unwrap().to_owned();
    tenant.shutdown().await;
    let text = std::fs::read_to_string(&state_file).unwrap();
    assert!(
        !text.contains(&rt),
        "the state file holds digests, not refresh tokens"
    );

    let (tenant, client) = spawn_with(options()).await;
    let (status, body) = refresh(&tenant, &client, &rt).await;
    assert_eq!(
        status, 200,
        "the refresh token works after a restart: {body}"
    );
    verify(
        &tenant,
        &client,
        body["access_token"].as_str().unwrap(),
        API,
    )
    .await;
}

#[tokio::test]
async fn garbage_never_panics_and_gets_a_page_or_an_oauth_error() {
    let (tenant, client) = spawn().await;
    for path in [
        "/u/login",
        "/u/login?state=nope",
        "/u/mfa",
        "/u/mfa?state=nope",
        "/authorize",
        "/authorize?client_id=",
    ] {
        let response = client.get(tenant.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        assert!(
            response.text().await.unwrap().contains("<h1>"),
            "{path} shows a page"
        );
    }
    let response = client
        .post(tenant.url("/u/login"))
        .form(&[("username", "x"), ("password", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "no transaction");
    // A password-only transaction cannot jump to the MFA page.
    let tx = start_login(&tenant, &client, authorize_url(&tenant, &Pkce::new(), &[])).await;
    let response = client
        .post(tenant.url("/u/mfa"))
        .form(&[("state", tx.as_str()), ("code", "123456")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "MFA before the password");

    let response = client
        .post(tenant.url("/oauth/token"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &Value::from("invalid_request")),
        "{body}"
    );
    let response = client
        .post(tenant.url("/oauth/token"))
        .json(&serde_json::json!({"grant_type": "refresh_token", "client_id": demo::DESKTOP_CLIENT_ID}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &Value::from("invalid_request")),
        "{body}"
    );
}

#[tokio::test]
async fn an_old_login_transaction_shows_an_expired_page() {
    let (tenant, client, clock) = crate::support::spawn_with_manual_clock().await;
    let tx = start_login(&tenant, &client, authorize_url(&tenant, &Pkce::new(), &[])).await;
    clock.advance(std::time::Duration::from_secs(31 * 60));
    let response = submit_login(&tenant, &client, &tx, demo::BOB_EMAIL, demo::PASSWORD).await;
    assert_eq!(response.status(), 400);
    assert!(
        response.headers().get("location").is_none(),
        "no code for an expired transaction"
    );
    assert!(response.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn offline_access_needs_an_api_that_allows_it_and_refresh_can_narrow_scope() {
    let mut options = TenantOptions::for_test();
    let mut strict = options.world.apis[0].clone();
    strict.identifier = "https://strict.example/api".to_owned();
    strict.allow_offline_access = false;
    options.world.apis.push(strict);
    let (tenant, client) = spawn_with(options).await;

    let pkce = Pkce::new();
    let callback = bob_login(
        &tenant,
        &client,
        &pkce,
        &[("audience", "https://strict.example/api")],
    )
    .await;
    let (status, body) = exchange(
        &tenant,
        &client,
        &param(&callback, "code").unwrap(),
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "the API does not allow offline access: {body}"
    );
    assert_eq!(
        body["scope"], "openid profile email",
        "offline_access was dropped"
    );
    verify(
        &tenant,
        &client,
        body["access_token"].as_str().unwrap(),
        "https://strict.example/api",
    )
    .await;

    let pkce = Pkce::new();
    let response = client
        .get(authorize_url(&tenant, &pkce, &[]))
        .send()
        .await
        .unwrap();
    let code = param(&location(&response), "code").unwrap();
    let (_, body) = exchange(
        &tenant,
        &client,
        &code,
        &pkce.verifier,
        demo::FIRST_CALLBACK,
    )
    .await;
    let rt = body["refresh_token"].as_str().unwrap();
    let (status, narrowed) = json(
        client
            .post(tenant.url("/oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", demo::DESKTOP_CLIENT_ID),
                ("refresh_token", rt),
                ("scope", "openid"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{narrowed}");
    assert_eq!(narrowed["scope"], "openid");
    let id = crate::support::peek(narrowed["id_token"].as_str().unwrap());
    assert!(id.get("email").is_none(), "narrowed to openid: {id}");
    let (status, widened) = json(
        client
            .post(tenant.url("/oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", demo::DESKTOP_CLIENT_ID),
                ("refresh_token", narrowed["refresh_token"].as_str().unwrap()),
                ("scope", "openid read:everything"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "a refresh cannot widen the scope: {widened}");
    assert_eq!(widened["error"], "invalid_scope");
}
