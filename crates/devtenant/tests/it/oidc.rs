//! The Authentication API as a generic OAuth client and a browser see it: discovery, JWKS, the code flow with
//! PKCE through the hosted login and MFA pages, refresh-token rotation, client credentials, revocation,
//! `/userinfo` and logout, and the failure cases in Auth0's error shapes.

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
