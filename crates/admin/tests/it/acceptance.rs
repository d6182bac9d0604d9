//! The acceptance path: from an empty tenant (users only), `apply` then `export` yield a proxy config the
//! proxy starts with and a desktop config whose client signs in (hosted login, PKCE) and lists through that proxy.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use companion_admin::{ApplyOptions, apply, export};
use companion_devtenant::world::{World, demo};
use companion_proxy::{AppState, SystemClock};
use sha2::Digest as _;

use crate::support::{ADMIN_SCOPES, admin, empty_world, fast, sample_spec, tenant_with};

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("browser client")
}

fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 302, "a redirect from {}", response.url());
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

#[tokio::test]
async fn applied_and_exported_configs_sign_in_and_list_through_the_proxy() {
    let mut world = empty_world(&ADMIN_SCOPES);
    world.users = World::demo().users;
    let tenant = tenant_with(world).await;
    let client = admin(&tenant);
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("proxy-secret");
    let mut spec = sample_spec();
    spec.proxy.secret_file = secret_file.display().to_string();
    apply(
        &client,
        &spec,
        &ApplyOptions {
            secrets_out: Some(secret_file.clone()),
            ..fast()
        },
    )
    .await
    .expect("apply");
    let exported = export(&client, &spec).await.expect("export");

    // The proxy, from its exported file.
    let proxy_file = dir.path().join("proxy.toml");
    std::fs::write(&proxy_file, &exported.proxy_toml).expect("write proxy.toml");
    let settings = companion_proxy::config::Config {
        config: Some(proxy_file),
        ..Default::default()
    }
    .with_file()
    .expect("proxy file")
    .validate()
    .expect("proxy settings");
    let state = AppState::new(settings, Arc::new(SystemClock)).expect("proxy state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(companion_proxy::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    // The desktop side, from its exported managed file: sign in as Bob with PKCE.
    let desktop = companion_client::config::PartialConfig::from_toml(
        &dir.path().join("config.toml"),
        &exported.desktop_toml,
    )
    .expect("desktop file");
    let client_id = desktop.client_id.clone().expect("client_id");
    let audience = desktop.audience.clone().expect("audience");
    let port = desktop.redirect_ports.as_ref().expect("ports")[0];
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let auth0 = desktop.auth0_url.clone().expect("auth0_url");
    let browser = browser();
    let verifier = "acceptance-verifier-0123456789-0123456789-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let mut authorize = auth0.join("authorize").expect("authorize url");
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("scope", "openid profile email offline_access"),
        ("audience", audience.as_str()),
        ("state", "s1"),
        ("nonce", "n1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let login = location(&browser.get(authorize).send().await.expect("authorize"));
    let tx = param(tenant.url(&login).as_str(), "state");
    let response = browser
        .post(tenant.url("/u/login"))
        .form(&[
            ("state", tx.as_str()),
            ("username", demo::BOB_EMAIL),
            ("password", demo::PASSWORD),
        ])
        .send()
        .await
        .expect("login");
    let back = location(&response);
    assert!(back.starts_with(&redirect), "back at the app: {back}");
    let tokens: serde_json::Value = browser
        .post(tenant.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("code", param(&back, "code").as_str()),
            ("code_verifier", verifier),
            ("redirect_uri", redirect.as_str()),
        ])
        .send()
        .await
        .expect("token exchange")
        .json()
        .await
        .expect("token json");
    let access = tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("an access token: {tokens}"));
    assert!(
        tokens["refresh_token"].is_string(),
        "offline access works for the provisioned API: {tokens}"
    );

    let listed = browser
        .get(format!("http://{proxy}/v1/me/authenticators"))
        .bearer_auth(access)
        .send()
        .await
        .expect("proxy answers");
    let status = listed.status();
    let body: serde_json::Value = listed.json().await.expect("json");
    assert_eq!(
        status, 200,
        "the proxy lists with the provisioned credentials: {body}"
    );
    assert_eq!(
        body["authenticators"],
        serde_json::json!([]),
        "Bob has none"
    );

    let _ = stop.send(());
    server.await.expect("join").expect("served");
    tenant.shutdown().await;
}
