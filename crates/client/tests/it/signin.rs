//! The whole sign-in against the in-process dev tenant with a scripted browser: PKCE code flow, ID token checks,
//! refresh rotation, step-up, sign-out with revocation, and a memory-only session when the keyring is unavailable.

use std::sync::Arc;
use std::time::Duration;

use companion_client::loopback::LoopbackError;
use companion_client::oidc::{AuthError, SignInOptions};
use companion_client::session::Persistence;
use companion_client::store::{StoreAccount, StoreError, TokenStore};
use companion_devtenant::world::demo;
use companion_protocol::claims::{MFA_ACR, MFA_TIME_CLAIM};
use openidconnect::RefreshToken;

use crate::support::{
    ScriptedBrowser, User, jwt_payload, listener_and_tenant, memory_session, session, try_refresh,
};

fn options() -> SignInOptions {
    SignInOptions {
        timeout: Duration::from_secs(30),
        ..SignInOptions::default()
    }
}

fn stored(store: &dyn TokenStore, account: &StoreAccount) -> String {
    store
        .load(account)
        .expect("store works")
        .expect("a refresh token is stored")
        .secret()
        .clone()
}

#[tokio::test]
async fn bob_signs_in_with_pkce_and_the_refresh_token_is_stored() {
    let (listener, tenant) = listener_and_tenant().await;
    let (session, store) = memory_session(&tenant);
    let mut browser = ScriptedBrowser::new(&tenant, User::Bob, None);
    let signed_in = session
        .sign_in_with(listener, &browser.launcher(), &options())
        .await
        .expect("sign-in succeeds");
    assert_eq!(signed_in.identity.sub, demo::BOB_USER_ID);
    assert_eq!(signed_in.persistence, Persistence::Stored);
    let finished = browser.next().await;
    assert_eq!(finished.status, 200, "{}", finished.page);
    assert!(
        finished.page.contains("You are signed in")
            && finished.page.contains("You can close this tab"),
        "{}",
        finished.page
    );

    let url = &finished.authorize_url;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert!(
        param("code_challenge").is_some_and(|c| c.len() == 43),
        "an S256 challenge"
    );
    assert!(param("state").is_some() && param("nonce").is_some());
    assert_eq!(param("audience").as_deref(), Some(demo::API_AUDIENCE));
    assert!(param("scope").is_some_and(|s| s.contains("openid") && s.contains("offline_access")));
    assert_eq!(param("acr_values"), None, "no step-up on a plain sign-in");
    assert_eq!(param("max_age"), None);

    let refresh = stored(store.as_ref(), session.account());
    assert!(
        !format!("{session:?}").contains(&refresh),
        "no token in Debug"
    );
    let token = session
        .access_token()
        .await
        .expect("access token in memory");
    let claims = jwt_payload(token.secret());
    assert_eq!(claims["sub"], demo::BOB_USER_ID);
    let status = session.status().await.expect("status");
    assert!(status.signed_in);
    assert_eq!(status.sub.as_deref(), Some(demo::BOB_USER_ID));
    let json = serde_json::to_value(&status).expect("status serializes");
    assert_eq!(json["signed_in"], true);
    assert_eq!(json["sub"], demo::BOB_USER_ID);
}

#[tokio::test]
async fn refresh_rotates_stores_the_new_token_and_reuse_ends_the_session() {
    let (listener, tenant) = listener_and_tenant().await;
    let (first, store) = memory_session(&tenant);
    let mut browser = ScriptedBrowser::new(&tenant, User::Bob, None);
    first
        .sign_in_with(listener, &browser.launcher(), &options())
        .await
        .expect("sign-in");
    browser.next().await;
    let original = stored(store.as_ref(), first.account());

    // A new process: same store, no access token in memory, so it must refresh.
    let second = session(&tenant, store.clone());
    let token = second.access_token().await.expect("refresh works");
    assert_eq!(jwt_payload(token.secret())["sub"], demo::BOB_USER_ID);
    let rotated = stored(store.as_ref(), second.account());
    assert_ne!(
        rotated, original,
        "rotation: the store holds the new refresh token"
    );
    let identity = second.identity().await.expect("identity after refresh");
    assert_eq!(identity.sub, demo::BOB_USER_ID);

    // Reusing the consumed token is refused, and reuse detection revokes the family.
    let (status, error) = try_refresh(&tenant, &original).await;
    // Auth0 (and the dev tenant) answer 403 invalid_grant for a dead refresh token.
    assert!(
        (400..500).contains(&status),
        "a rotated-out token is dead: {status}"
    );
    assert_eq!(error.as_deref(), Some("invalid_grant"));
    let third = session(&tenant, store.clone());
    let result = third.access_token().await;
    assert!(matches!(result, Err(AuthError::SignedOut)), "{result:?}");
    assert!(
        store.load(third.account()).expect("load").is_none(),
        "a dead refresh token is deleted from the store"
    );
    let status = third.status().await.expect("status works signed out");
    assert!(!status.signed_in);
}

#[tokio::test]
async fn sign_out_revokes_and_deletes_the_entry() {
    let (listener, tenant) = listener_and_tenant().await;
    let (session, store) = memory_session(&tenant);
    let mut browser = ScriptedBrowser::new(&tenant, User::Bob, None);
    session
        .sign_in_with(listener, &browser.launcher(), &options())
        .await
        .expect("sign-in");
    browser.next().await;
    let refresh = stored(store.as_ref(), session.account());
    assert!(
        session.sign_out().await.expect("sign-out"),
        "there was a session"
    );
    assert!(
        store.load(session.account()).expect("load").is_none(),
        "entry deleted"
    );
    let (status, error) = try_refresh(&tenant, &refresh).await;
    assert!(
        (400..500).contains(&status),
        "revoked at the tenant: {status}"
    );
    assert_eq!(error.as_deref(), Some("invalid_grant"));
    assert!(matches!(
        session.access_token().await,
        Err(AuthError::SignedOut)
    ));
    assert!(
        !session.sign_out().await.expect("second sign-out"),
        "nothing left to sign out"
    );
}

#[tokio::test]
async fn step_up_asks_for_mfa_now_and_the_tokens_prove_it() {
    let (listener, tenant) = listener_and_tenant().await;
    let (session, _store) = memory_session(&tenant);
    let mut browser = ScriptedBrowser::new(&tenant, User::Alice, None);
    let step_up = SignInOptions {
        step_up: true,
        ..options()
    };
    let signed_in = session
        .sign_in_with(listener, &browser.launcher(), &step_up)
        .await
        .expect("step-up sign-in");
    assert_eq!(signed_in.identity.sub, demo::ALICE_USER_ID);
    let finished = browser.next().await;
    let url = &finished.authorize_url;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("acr_values").as_deref(), Some(MFA_ACR));
    assert_eq!(param("max_age").as_deref(), Some("0"));
    let token = session.access_token().await.expect("access token");
    let claims = jwt_payload(token.secret());
    assert!(
        claims[MFA_TIME_CLAIM].is_u64(),
        "the access token carries mfa_time: {claims}"
    );
}

#[tokio::test]
async fn a_tampered_state_gets_an_error_page_and_no_exchange() {
    let (listener, tenant) = listener_and_tenant().await;
    let (session, store) = memory_session(&tenant);
    fn tamper(mut url: url::Url) -> url::Url {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "state" {
                    "forged".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url
    }
    let mut browser = ScriptedBrowser::new(&tenant, User::Bob, Some(tamper));
    let short = SignInOptions {
        timeout: Duration::from_secs(3),
        ..options()
    };
    let result = session
        .sign_in_with(listener, &browser.launcher(), &short)
        .await;
    let finished = browser.next().await;
    assert_eq!(finished.status, 400, "{}", finished.page);
    assert!(
        matches!(
            result,
            Err(AuthError::Loopback(LoopbackError::TimedOut { .. }))
        ),
        "a forged state never completes the sign-in: {result:?}"
    );
    assert!(
        store.load(session.account()).expect("load").is_none(),
        "no token exchanged"
    );
}

/// A store whose keyring is always unavailable, as without a session bus.
#[derive(Debug)]
struct NoKeyring;

impl TokenStore for NoKeyring {
    fn load(&self, _: &StoreAccount) -> Result<Option<RefreshToken>, StoreError> {
        Err(unavailable())
    }
    fn save(&self, _: &StoreAccount, _: &RefreshToken) -> Result<(), StoreError> {
        Err(unavailable())
    }
    fn delete(&self, _: &StoreAccount) -> Result<(), StoreError> {
        Err(unavailable())
    }
    fn kind(&self) -> &'static str {
        "keyring"
    }
}

fn unavailable() -> StoreError {
    StoreError::KeyringUnavailable {
        source: "no session bus".into(),
    }
}

#[tokio::test]
async fn without_a_keyring_the_session_lives_in_memory_only() {
    let (listener, tenant) = listener_and_tenant().await;
    let session = session(&tenant, Arc::new(NoKeyring));
    let mut browser = ScriptedBrowser::new(&tenant, User::Bob, None);
    let signed_in = session
        .sign_in_with(listener, &browser.launcher(), &options())
        .await
        .expect("sign-in works without a keyring");
    browser.next().await;
    assert_eq!(signed_in.persistence, Persistence::MemoryOnly);
    session
        .refresh()
        .await
        .expect("refresh from the in-memory token");
    let status = session.status().await.expect("status");
    assert!(status.signed_in);
    assert_eq!(status.persistence, Some(Persistence::MemoryOnly));
    assert!(!status.keyring_available);
    assert!(session.sign_out().await.expect("sign-out"));
    assert!(matches!(
        session.access_token().await,
        Err(AuthError::SignedOut)
    ));
}

/// A clock running ahead of the tenant's.
#[derive(Debug)]
struct Ahead(Duration);

impl companion_client::clock::Clock for Ahead {
    fn now(&self) -> std::time::SystemTime {
        companion_client::clock::SystemClock.now() + self.0
    }
}

#[tokio::test]
async fn a_step_up_whose_auth_time_predates_the_request_is_refused() {
    let (listener, tenant) = listener_and_tenant().await;
    let config = crate::support::config(&tenant, None, vec![0]);
    let session = companion_client::session::Session::new(
        config,
        Arc::new(companion_client::store::MemoryStore::new()),
        Arc::new(Ahead(Duration::from_secs(600))),
    )
    .expect("session");
    let mut browser = ScriptedBrowser::new(&tenant, User::Alice, None);
    let step_up = SignInOptions {
        step_up: true,
        ..options()
    };
    let result = session
        .sign_in_with(listener, &browser.launcher(), &step_up)
        .await;
    let finished = browser.next().await;
    assert!(
        matches!(&result, Err(AuthError::IdToken { reason }) if reason.contains("auth_time")),
        "auth_time 10 minutes before the request with max_age=0 must fail: {result:?}"
    );
    assert!(
        finished
            .page
            .contains("Sign-in failed: the identity provider's ID token did not pass the checks."),
        "{}",
        finished.page
    );
    assert!(
        !finished.page.contains("You are signed in"),
        "{}",
        finished.page
    );
}

#[tokio::test]
async fn discovery_must_match_the_issuer_and_failures_are_typed() {
    let (listener, tenant) = listener_and_tenant().await;
    // Same server, but not the issuer it announces (`http://localhost:<port>/`).
    let mut config = crate::support::config(&tenant, None, vec![0]);
    config.auth0_url =
        url::Url::parse(&format!("http://127.0.0.1:{}", tenant.addr.port())).expect("url");
    let session = companion_client::session::Session::new(
        config,
        Arc::new(companion_client::store::MemoryStore::new()),
        Arc::new(companion_client::clock::SystemClock),
    )
    .expect("session");
    let opened = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = opened.clone();
    let launcher = move |_: &url::Url| {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    };
    let result = session.sign_in_with(listener, &launcher, &options()).await;
    assert!(
        matches!(&result, Err(AuthError::Discovery { reason, .. }) if reason.to_lowercase().contains("issuer")),
        "an issuer mismatch is refused: {result:?}"
    );
    assert!(
        !opened.load(std::sync::atomic::Ordering::SeqCst),
        "no browser for a bad provider"
    );
}

#[tokio::test]
async fn signing_in_again_revokes_the_replaced_session() {
    let first = companion_client::loopback::LoopbackListener::bind(&[0])
        .await
        .expect("bind");
    let second = companion_client::loopback::LoopbackListener::bind(&[0])
        .await
        .expect("bind");
    let tenant = crate::support::tenant_for(&[first.port(), second.port()]).await;
    let (session, store) = memory_session(&tenant);
    let mut browser = ScriptedBrowser::new(&tenant, User::Bob, None);
    session
        .sign_in_with(first, &browser.launcher(), &options())
        .await
        .expect("first sign-in");
    browser.next().await;
    let old = stored(store.as_ref(), session.account());
    session
        .sign_in_with(second, &browser.launcher(), &options())
        .await
        .expect("second sign-in");
    browser.next().await;
    let new = stored(store.as_ref(), session.account());
    assert_ne!(old, new, "the new session's token replaced the old one");
    let (_, error) = try_refresh(&tenant, &old).await;
    assert_eq!(
        error.as_deref(),
        Some("invalid_grant"),
        "the replaced token was revoked"
    );
    session
        .refresh()
        .await
        .expect("the new session still works");
}

#[tokio::test]
async fn rotated_signing_keys_do_not_lose_the_session() {
    let first = companion_client::loopback::LoopbackListener::bind(&[0])
        .await
        .expect("bind");
    let second = companion_client::loopback::LoopbackListener::bind(&[0])
        .await
        .expect("bind");
    let third = companion_client::loopback::LoopbackListener::bind(&[0])
        .await
        .expect("bind");
    let tenant = crate::support::tenant_for(&[first.port(), second.port(), third.port()]).await;
    let (session, store) = memory_session(&tenant);
    let mut browser = ScriptedBrowser::new(&tenant, User::Bob, None);
    session
        .sign_in_with(first, &browser.launcher(), &options())
        .await
        .expect("sign-in");
    browser.next().await;
    let before = stored(store.as_ref(), session.account());

    let now = tenant.state.clock.unix();
    let keys = tenant.state.keys.clone();
    tokio::task::spawn_blocking(move || keys.rotate(now))
        .await
        .expect("join")
        .expect("rotate");

    // The refresh response's ID token is signed by a key this session has not discovered yet: the JWKS is
    // fetched again, the refresh succeeds and the rotated refresh token is kept.
    session
        .refresh()
        .await
        .expect("refresh despite the new key");
    let after = stored(store.as_ref(), session.account());
    assert_ne!(before, after, "the rotated refresh token is stored");
    assert_eq!(
        session.identity().await.expect("identity").sub,
        demo::BOB_USER_ID
    );

    // A sign-in after the rotation verifies its ID token with the refetched keys.
    let signed_in = session
        .sign_in_with(second, &browser.launcher(), &options())
        .await
        .expect("the new key verifies after a JWKS refetch");
    browser.next().await;
    assert_eq!(signed_in.identity.sub, demo::BOB_USER_ID);

    // Rotate again: the next sign-in needs another refetch (the refetch is not a one-off).
    let now = tenant.state.clock.unix();
    let keys = tenant.state.keys.clone();
    tokio::task::spawn_blocking(move || keys.rotate(now))
        .await
        .expect("join")
        .expect("rotate");
    session
        .sign_in_with(third, &browser.launcher(), &options())
        .await
        .expect("a second rotation is picked up too");
    browser.next().await;
}

/// Rewrites one query parameter of a callback URL (adding it when absent).
fn with_param(mut url: url::Url, name: &str, value: &str) -> url::Url {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.push((name.to_owned(), value.to_owned()));
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url
}

/// Counts the tenant's token endpoint calls (a pass-through "fault" of no latency to speak of).
fn count_token_calls(tenant: &companion_devtenant::RunningTenant) -> impl Fn() -> u64 {
    let faults = tenant.state.faults.clone();
    let id = faults
        .add(companion_devtenant::faults::FaultSpec::latency(
            "/oauth/token",
            Duration::from_millis(1),
        ))
        .expect("a valid counter");
    move || {
        faults
            .list()
            .iter()
            .find(|fault| fault.id == id)
            .map_or(0, |fault| fault.hits)
    }
}

#[tokio::test]
async fn a_callback_naming_another_issuer_is_refused_before_any_exchange() {
    let (listener, tenant) = listener_and_tenant().await;
    let (session, store) = memory_session(&tenant);
    let token_calls = count_token_calls(&tenant);
    fn tamper(url: url::Url) -> url::Url {
        with_param(url, "iss", "https://attacker.example/")
    }
    let mut browser = ScriptedBrowser::new(&tenant, User::Bob, Some(tamper));
    let result = session
        .sign_in_with(listener, &browser.launcher(), &options())
        .await;
    let finished = browser.next().await;
    assert!(
        matches!(
            &result,
            Err(AuthError::Loopback(LoopbackError::IssuerMismatch { expected, found: Some(found) }))
                if expected == &format!("{}/", tenant.base_url()) && found == "https://attacker.example/"
        ),
        "a mixed-up response ends the sign-in with the typed error: {result:?}"
    );
    assert_eq!(finished.status, 400, "{}", finished.page);
    assert!(
        finished.page.contains("did not come from") && finished.page.contains("close this tab"),
        "{}",
        finished.page
    );
    assert_eq!(token_calls(), 0, "the code was never exchanged");
    assert!(
        store.load(session.account()).expect("load").is_none(),
        "nothing stored"
    );

    // The tenant's own issuer (exactly as discovered) passes.
    let listener = companion_client::loopback::LoopbackListener::bind(&[0])
        .await
        .expect("bind");
    let tenant = crate::support::tenant_for(&[listener.port()]).await;
    let (session, _store) = memory_session(&tenant);
    let issuer = session
        .provider()
        .await
        .expect("discovery")
        .metadata()
        .issuer()
        .as_str()
        .to_owned();
    assert_eq!(
        session.provider().await.expect("discovery").issuer_check(),
        companion_client::loopback::IssuerCheck::IfPresent(issuer.clone()),
        "the dev tenant, like Auth0, does not advertise authorization_response_iss_parameter_supported"
    );
    static ISSUER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ISSUER.set(issuer).expect("set once");
    fn honest(url: url::Url) -> url::Url {
        with_param(url, "iss", ISSUER.get().expect("set"))
    }
    let mut browser = ScriptedBrowser::new(&tenant, User::Bob, Some(honest));
    session
        .sign_in_with(listener, &browser.launcher(), &options())
        .await
        .expect("the right iss is accepted");
    assert!(browser.next().await.page.contains("You are signed in"));
}

#[tokio::test]
async fn a_refused_exchange_finishes_the_browser_page_before_the_caller_returns() {
    let (listener, tenant) = listener_and_tenant().await;
    let (session, store) = memory_session(&tenant);
    let token_calls = count_token_calls(&tenant);
    fn tamper(url: url::Url) -> url::Url {
        with_param(url, "code", "not-a-code-the-tenant-issued")
    }
    let mut browser = ScriptedBrowser::new(&tenant, User::Bob, Some(tamper));
    // The sign-in runs on a runtime of its own that is dropped the moment it returns, as a CLI that exits: a
    // page still being written then would be cut off. The browser and the tenant run on the test's runtime.
    let session = Arc::new(session);
    let signer = session.clone();
    let launcher = browser.launcher();
    let result = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let result = runtime.block_on(signer.sign_in_with(listener, &launcher, &options()));
        drop(runtime);
        result
    })
    .await
    .expect("join");
    assert!(
        matches!(&result, Err(AuthError::TokenRejected { error, .. }) if error == "invalid_grant"),
        "the caller gets the typed error: {result:?}"
    );
    assert_eq!(token_calls(), 1, "the forged code was tried once");
    let finished = tokio::time::timeout(Duration::from_secs(10), browser.next())
        .await
        .expect("the browser got its page");
    assert_eq!(finished.status, 200, "{}", finished.page);
    assert!(
        finished.page.contains(
            "Sign-in failed: the identity provider refused to issue the tokens (invalid_grant)."
        ) && finished.page.contains("You can close this tab")
            && finished.page.trim_end().ends_with("</html>"),
        "the whole failure page: {}",
        finished.page
    );
    assert!(
        store.load(session.account()).expect("load").is_none(),
        "nothing stored"
    );
}
