//! Against the real proxy (in process) and the dev tenant: list, rename, remove with step-up, typed errors, and
//! enrollment polling.
//!
//! Time: the tenant runs on a manual clock 10 minutes behind the proxy's real clock, and the client follows the
//! tenant's clock. A first sign-in's `mfa_time` is therefore already stale for the proxy (step-up required); after
//! advancing the tenant clock to real time, a step-up sign-in yields a fresh one.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use companion_client::loopback::LoopbackListener;
use companion_client::oidc::SignInOptions;
use companion_client::proxy::ProxyError;
use companion_client::store::MemoryStore;
use companion_client::{Companion, EnrollError, EnrollOptions};
use companion_devtenant::clock::{Clock as TenantClock, ManualClock};
use companion_devtenant::world::demo;
use companion_devtenant::{RunningTenant, TenantOptions};
use companion_protocol::api::{ApiErrorCode, AuthenticatorList, EnrollmentType};
use companion_protocol::auth0::MethodType;
use companion_proxy::AppState;
use companion_proxy::config::Settings;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::support::{ScriptedBrowser, User, config, tenant_with};

const ALICE_KEY: &str = "webauthn-roaming|dev_aliceYubiKey0001";

/// The client's clock: the tenant's.
#[derive(Debug)]
struct FollowTenant(ManualClock);

impl companion_client::clock::Clock for FollowTenant {
    fn now(&self) -> SystemTime {
        SystemTime::from(self.0.now())
    }
}

struct World {
    tenant: RunningTenant,
    tenant_clock: ManualClock,
    proxy_url: Url,
    listeners: Vec<LoopbackListener>,
}

async fn world(sign_ins: usize) -> World {
    let mut listeners = Vec::new();
    for _ in 0..sign_ins {
        listeners.push(LoopbackListener::bind(&[0]).await.expect("bind loopback"));
    }
    let ports: Vec<u16> = listeners.iter().map(LoopbackListener::port).collect();
    let tenant_clock =
        ManualClock::new(time::OffsetDateTime::now_utc() - time::Duration::minutes(10));
    let options = TenantOptions {
        clock: Arc::new(tenant_clock.clone()),
        ..TenantOptions::for_test()
    };
    let tenant = tenant_with(options, &ports).await;
    let settings = Settings::for_test(
        tenant.base_url(),
        demo::PROXY_CLIENT_ID,
        demo::PROXY_CLIENT_SECRET,
    )
    .expect("proxy settings");
    let state =
        AppState::new(settings, Arc::new(companion_proxy::SystemClock)).expect("proxy state");
    state.warm_up().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind proxy");
    let proxy_url =
        Url::parse(&format!("http://{}", listener.local_addr().expect("addr"))).expect("url");
    tokio::spawn(companion_proxy::serve(
        listener,
        state,
        std::future::pending(),
    ));
    World {
        tenant,
        tenant_clock,
        proxy_url,
        listeners,
    }
}

fn companion(world: &World) -> Companion {
    Companion::new(
        config(&world.tenant, Some(&world.proxy_url), vec![0]),
        Arc::new(MemoryStore::new()),
        Arc::new(FollowTenant(world.tenant_clock.clone())),
    )
    .expect("companion")
}

fn options(step_up: bool) -> SignInOptions {
    SignInOptions {
        step_up,
        timeout: Duration::from_secs(30),
        ..SignInOptions::default()
    }
}

#[tokio::test]
async fn list_rename_and_remove_with_step_up() {
    let mut world = world(2).await;
    let companion = companion(&world);
    let mut browser = ScriptedBrowser::new(&world.tenant, User::Alice, None);

    let signed_out = companion.list().await;
    assert!(
        matches!(signed_out, Err(ProxyError::SignedOut)),
        "{signed_out:?}"
    );

    let first = world.listeners.remove(0);
    companion
        .session()
        .sign_in_with(first, &browser.launcher(), &options(false))
        .await
        .expect("sign-in");
    browser.next().await;

    let raw = companion.list_raw().await.expect("list");
    let parsed: AuthenticatorList = serde_json::from_str(&raw).expect("the contract's shape");
    let value: serde_json::Value = serde_json::from_str(&raw).expect("json");
    assert!(value["authenticators"].is_array(), "{raw}");
    assert!(
        parsed.authenticators.iter().any(|a| a.id == ALICE_KEY),
        "{raw}"
    );

    let renamed = companion
        .rename(ALICE_KEY, "Work key")
        .await
        .expect("rename");
    assert_eq!(renamed.display_name, "Work key");
    let too_long = companion.rename(ALICE_KEY, &"x".repeat(21)).await;
    assert!(
        matches!(too_long, Err(ProxyError::InvalidRequest { .. })),
        "{too_long:?}"
    );

    let missing = companion
        .remove("webauthn-roaming|dev_nobodysKey00001")
        .await;
    assert!(
        matches!(
            missing,
            Err(ProxyError::NotFound { .. }) | Err(ProxyError::StepUpRequired { .. })
        ),
        "{missing:?}"
    );
    let bad_id = companion.remove("not an id").await;
    assert!(
        matches!(
            bad_id,
            Err(ProxyError::InvalidRequest {
                code: ApiErrorCode::InvalidId,
                ..
            })
        ),
        "{bad_id:?}"
    );

    let stale = companion.remove(ALICE_KEY).await;
    assert!(
        matches!(
            stale,
            Err(ProxyError::StepUpRequired {
                max_age: Some(300),
                ..
            })
        ),
        "a 10-minute-old MFA needs step-up: {stale:?}"
    );

    world.tenant_clock.advance(Duration::from_secs(600));
    let second = world.listeners.remove(0);
    companion
        .session()
        .sign_in_with(second, &browser.launcher(), &options(true))
        .await
        .expect("step-up sign-in");
    browser.next().await;
    companion
        .remove(ALICE_KEY)
        .await
        .expect("removal after step-up");
    let after = companion.list().await.expect("list");
    assert!(
        !after.authenticators.iter().any(|a| a.id == ALICE_KEY),
        "removed"
    );
    let again = companion.remove(ALICE_KEY).await;
    assert!(
        matches!(again, Err(ProxyError::NotFound { .. })),
        "{again:?}"
    );
}

#[tokio::test]
async fn enrollment_opens_the_ticket_and_returns_the_new_method() {
    let mut world = world(2).await;
    // Fresh MFA from the start: no step-up for enrollment.
    world.tenant_clock.advance(Duration::from_secs(600));
    let companion = companion(&world);
    let mut browser = ScriptedBrowser::new(&world.tenant, User::Alice, None);
    companion
        .session()
        .sign_in_with(
            world.listeners.remove(0),
            &browser.launcher(),
            &options(true),
        )
        .await
        .expect("sign-in");
    browser.next().await;

    let opened = Arc::new(std::sync::Mutex::new(Vec::<Url>::new()));
    let seen = opened.clone();
    let store = world.tenant.state.store.clone();
    // The "browser" finishes the registration at once: a new roaming key appears in the tenant.
    let finish = move |url: &Url| {
        seen.lock().expect("lock").push(url.clone());
        store.write(|state| {
            let alice = state.user_mut(demo::ALICE_USER_ID).expect("alice");
            let mut key = alice
                .methods
                .iter()
                .find(|m| m.method.kind == MethodType::WebauthnRoaming)
                .expect("alice has a roaming key")
                .clone();
            key.method.id = "webauthn-roaming|dev_newKeyForTest01".to_owned();
            key.method.name = Some("New key".to_owned());
            alice.methods.push(key);
        });
        Ok(())
    };
    let enroll = EnrollOptions {
        timeout: Duration::from_secs(20),
        first_interval: Duration::from_millis(50),
        max_interval: Duration::from_millis(200),
        cancel: CancellationToken::new(),
    };
    let added = companion
        .enroll(EnrollmentType::WebauthnRoaming, &finish, &enroll)
        .await
        .expect("the new key is found");
    assert_eq!(added.id, "webauthn-roaming|dev_newKeyForTest01");
    let opened = opened.lock().expect("lock").clone();
    assert_eq!(opened.len(), 1, "the ticket was opened once");
    assert!(
        opened[0].as_str().starts_with(world.tenant.base_url()),
        "{}",
        opened[0]
    );

    // Nothing new appears: the bound ends the wait; a cancel ends it sooner.
    let before: HashSet<String> = companion
        .list()
        .await
        .expect("list")
        .authenticators
        .into_iter()
        .map(|a| a.id)
        .collect();
    let short = EnrollOptions {
        timeout: Duration::from_millis(400),
        ..enroll.clone()
    };
    let timed_out = companion
        .wait_for_new(EnrollmentType::WebauthnRoaming, &before, &short)
        .await;
    assert!(
        matches!(timed_out, Err(EnrollError::TimedOut { .. })),
        "{timed_out:?}"
    );
    let cancelled = EnrollOptions {
        timeout: Duration::from_secs(60),
        ..enroll.clone()
    };
    cancelled.cancel.cancel();
    let result = companion
        .wait_for_new(EnrollmentType::WebauthnRoaming, &before, &cancelled)
        .await;
    assert!(matches!(result, Err(EnrollError::Cancelled)), "{result:?}");
}
