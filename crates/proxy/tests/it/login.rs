//! Tokens from the real login flow of the dev tenant (hosted login page, MFA page, PKCE code exchange), used
//! against the proxy: the tenant's real claims must satisfy the proxy's checks, including step-up.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use companion_devtenant::world::demo;
use companion_protocol::claims::MFA_ACR;
use sha2::Digest as _;

use crate::harness::{ALICE_TOTP, World, enc};

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("browser client")
}

fn location(response: &reqwest::Response) -> String {
    assert_eq!(
        response.status(),
        302,
        "expected a redirect from {}",
        response.url()
    );
    response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned()
}

fn param(url: &str, name: &str) -> String {
    let url = reqwest::Url::parse(url).expect("absolute url");
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{name} in {url}"))
}

/// Signs in through the tenant's pages; with `recovery_code`, passes the MFA page (step-up requested).
async fn sign_in(world: &World, email: &str, recovery_code: Option<&str>) -> String {
    let client = browser();
    let verifier = format!("verifier-{}-{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let mut authorize = world.tenant.url("/authorize");
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", demo::DESKTOP_CLIENT_ID),
        ("redirect_uri", demo::FIRST_CALLBACK),
        ("scope", "openid profile email offline_access"),
        ("audience", demo::API_AUDIENCE),
        ("state", "s1"),
        ("nonce", "n1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    if recovery_code.is_some() {
        authorize
            .query_pairs_mut()
            .extend_pairs([("acr_values", MFA_ACR), ("max_age", "0")]);
    }
    let login = location(&client.get(authorize).send().await.expect("authorize"));
    let tx = param(world.tenant.url(&login).as_str(), "state");
    let response = client
        .post(world.tenant.url("/u/login"))
        .form(&[
            ("state", tx.as_str()),
            ("username", email),
            ("password", demo::PASSWORD),
        ])
        .send()
        .await
        .expect("login");
    let mut next = location(&response);
    if let Some(code) = recovery_code {
        assert!(next.starts_with("/u/mfa"), "MFA asked: {next}");
        let response = client
            .post(world.tenant.url("/u/mfa"))
            .form(&[("state", tx.as_str()), ("recovery_code", code)])
            .send()
            .await
            .expect("mfa");
        // A used recovery code is replaced: the page shows the new one and a link back to the app.
        assert_eq!(response.status(), 200, "the replacement code is shown");
        let html = response.text().await.expect("page");
        next = html
            .split(r#"<a href=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a continue link")
            .replace("&amp;", "&");
    }
    assert!(
        next.starts_with(demo::FIRST_CALLBACK),
        "back at the app: {next}"
    );
    let code = param(&next, "code");
    let tokens: serde_json::Value = client
        .post(world.tenant.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", demo::DESKTOP_CLIENT_ID),
            ("code", code.as_str()),
            ("code_verifier", verifier.as_str()),
            ("redirect_uri", demo::FIRST_CALLBACK),
        ])
        .send()
        .await
        .expect("token exchange")
        .json()
        .await
        .expect("token json");
    tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("an access token: {tokens}"))
        .to_owned()
}

#[tokio::test]
async fn tokens_from_the_real_login_flow_work_end_to_end() {
    let world = World::start().await;
    let bob = sign_in(&world, demo::BOB_EMAIL, None).await;
    let answer = world.list(&bob).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["authenticators"], serde_json::json!([]));
    let answer = world.enroll(&bob, "webauthn-roaming").await;
    assert_eq!(
        answer.status, 201,
        "no MFA yet, so no step-up: {}",
        answer.body
    );

    let alice_plain = sign_in(&world, demo::ALICE_EMAIL, Some(demo::ALICE_RECOVERY_CODE)).await;
    // This token carries a fresh mfa_time: removal passes the step-up.
    let answer = world.delete(&alice_plain, &enc(ALICE_TOTP)).await;
    assert_eq!(
        answer.status, 204,
        "fresh MFA from the MFA page: {}",
        answer.body
    );
    world.stop().await;
}
