//! Enrollment tickets register real WebAuthn credentials from a virtual authenticator, and those credentials
//! then pass the tenant's WebAuthn MFA challenge.

use std::time::Instant;

use anyhow::{Context as _, ensure};
use companion_e2e::browser::{Browser, VirtualAuthenticator, VirtualCredential};
use companion_e2e::oauth::{
    CallbackListener, DESKTOP_CLIENT_ID, MFA_ACR, Pkce, authorize_url, exchange_code, random_token,
    verified_claims,
};
use companion_e2e::serial;
use companion_e2e::signin::{Mfa, PAGE_TIMEOUT, answer_mfa, enroll_in_browser, submit_login_form};
use companion_e2e::tenant::E2eTenant;
use companion_protocol::auth0::{AuthenticationMethod, MethodType};

/// Reopens a used ticket and checks the "already used" page.
async fn reopen_used_ticket(browser: &Browser, ticket_url: &str) -> anyhow::Result<()> {
    browser.goto(ticket_url).await?;
    browser.wait_for("h1", PAGE_TIMEOUT).await?;
    browser.screenshot("ticket-used").await?;
    let text = browser.body_text().await?;
    ensure!(
        text.contains("already used"),
        "a used ticket shows a clear page; got:\n{text}"
    );
    ensure!(
        browser.find("#enroll").await?.is_none(),
        "no enroll button on a used ticket"
    );
    Ok(())
}

/// The single credential `authenticator` holds, bound to `localhost`.
async fn single_credential(
    browser: &Browser,
    authenticator: &str,
) -> anyhow::Result<VirtualCredential> {
    let mut credentials = browser.credentials(authenticator).await?;
    ensure!(
        credentials.len() == 1,
        "the authenticator holds one credential: {credentials:?}"
    );
    let credential = credentials.remove(0);
    ensure!(
        credential.rp_id == "localhost",
        "RP ID is localhost: {credential:?}"
    );
    Ok(credential)
}

/// The user's method with `key_id`, checked for Auth0's shape.
fn method_with_key(
    methods: &[AuthenticationMethod],
    key_id: &str,
    kind: &MethodType,
) -> anyhow::Result<AuthenticationMethod> {
    let method = methods
        .iter()
        .find(|m| m.key_id.as_deref() == Some(key_id))
        .with_context(|| format!("a method with key_id {key_id} among {methods:#?}"))?
        .clone();
    ensure!(&method.kind == kind, "type is {kind:?}: {method:#?}");
    let prefix = format!("{}|dev_", String::from(kind.clone()));
    let suffix = method
        .id
        .strip_prefix(&prefix)
        .with_context(|| format!("id {} starts with {prefix}", method.id))?;
    ensure!(
        suffix.len() == 16 && suffix.chars().all(|c| c.is_ascii_alphanumeric()),
        "Auth0-style id: {}",
        method.id
    );
    ensure!(method.confirmed == Some(true), "confirmed: {method:#?}");
    ensure!(
        method.relying_party_identifier.as_deref() == Some("localhost"),
        "bound to RP ID localhost: {method:#?}"
    );
    ensure!(
        method.public_key.as_deref().is_some_and(|k| !k.is_empty()),
        "public_key set: {method:#?}"
    );
    ensure!(
        method
            .user_agent
            .as_deref()
            .is_some_and(|ua| ua.contains("Chrome")),
        "user_agent is the browser's: {method:#?}"
    );
    ensure!(
        method.created_at.ends_with('Z') && method.created_at.len() == 24,
        "Auth0 timestamp: {}",
        method.created_at
    );
    if let Some(aaguid) = &method.aaguid {
        ensure!(
            aaguid.len() == 36 && aaguid != "00000000-0000-0000-0000-000000000000",
            "a non-zero hyphenated AAGUID when present: {aaguid}"
        );
    }
    eprintln!("enrolled: {method:?}");
    Ok(method)
}

/// Runs the desktop client's sign-in in the browser with `acr_values` multi-factor: the login form as `email`,
/// then the MFA page's WebAuthn option with whatever virtual authenticator holds the credential; exchanges the
/// code (PKCE S256) and returns the ID token's claims after checking `state`, `nonce` and `amr: ["mfa"]`.
async fn sign_in_with_webauthn_mfa(
    browser: &Browser,
    tenant: &E2eTenant,
    email: &str,
) -> anyhow::Result<serde_json::Value> {
    let callback = CallbackListener::bind().await?;
    let redirect_uri = callback.redirect_uri.clone();
    let pkce = Pkce::new();
    let (state, nonce) = (random_token(), random_token());
    let url = authorize_url(
        tenant.base_url(),
        &redirect_uri,
        &pkce,
        &state,
        &nonce,
        Some(MFA_ACR),
    );
    browser.goto(&url).await?;
    submit_login_form(browser, email).await?;
    answer_mfa(browser, Mfa::SecurityKey).await?;
    let params = match callback.wait(PAGE_TIMEOUT).await {
        Ok(params) => params,
        Err(error) => {
            let shot = browser.screenshot("no-callback").await.ok();
            let url = browser.current_url().await.unwrap_or_default();
            let text = browser.body_text().await.unwrap_or_default();
            return Err(error.context(format!(
                "no callback after the MFA page; on {url} (screenshot {shot:?}):\n{text}"
            )));
        }
    };
    browser.wait_for("#signed-in", PAGE_TIMEOUT).await?;
    browser.screenshot("callback").await?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    ensure!(
        param("state").as_deref() == Some(state.as_str()),
        "state echoed: {params:?}"
    );
    let code = param("code").with_context(|| format!("a code in the callback: {params:?}"))?;

    let tokens = exchange_code(tenant.base_url(), &code, &pkce, &redirect_uri).await?;
    let id_token = tokens["id_token"].as_str().context("an ID token")?;
    let claims = verified_claims(tenant.base_url(), id_token, DESKTOP_CLIENT_ID).await?;
    ensure!(claims["nonce"] == nonce.as_str(), "nonce echoed: {claims}");
    ensure!(
        claims["amr"]
            .as_array()
            .is_some_and(|amr| amr.iter().any(|v| v == "mfa")),
        "amr has mfa after the WebAuthn challenge: {claims}"
    );

    Ok(claims)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roaming_ticket_enrolls_a_presence_only_security_key() -> anyhow::Result<()> {
    let _serial = serial().await;
    let started = Instant::now();
    let tenant = E2eTenant::start().await?;
    let bob = tenant.user_id("bob@example.com")?;
    let ticket_url = tenant.create_ticket(&bob, "webauthn-roaming").await?;

    let browser = Browser::start("roaming").await?;
    let key = browser
        .add_authenticator(VirtualAuthenticator::PresenceOnlyUsbKey)
        .await?;
    enroll_in_browser(&browser, &ticket_url, "Add a security key").await?;

    let credential = single_credential(&browser, &key).await?;
    let methods = tenant.methods(&bob).await?;
    let method = method_with_key(
        &methods,
        &credential.credential_id,
        &MethodType::WebauthnRoaming,
    )?;
    ensure!(
        method
            .transports
            .as_deref()
            .is_some_and(|t| t.iter().any(|t| t == "usb")),
        "transports from the browser: {method:#?}"
    );
    reopen_used_ticket(&browser, &ticket_url).await?;
    let after = tenant.methods(&bob).await?;
    ensure!(
        after.len() == methods.len(),
        "reopening a used ticket enrolls nothing"
    );

    // A second ticket with the same key: the browser refuses the excluded credential, the page says why and
    // offers the button again.
    let second = tenant.create_ticket(&bob, "webauthn-roaming").await?;
    browser.goto(&second).await?;
    let button = browser.wait_for("#enroll", PAGE_TIMEOUT).await?;
    browser.click(&button).await?;
    browser
        .wait_for("#error:not([hidden])", PAGE_TIMEOUT)
        .await?;
    browser.screenshot("already-registered").await?;
    let text = browser.body_text().await?;
    ensure!(
        text.contains("already registered"),
        "the page explains the refusal: {text}"
    );
    let enabled = browser
        .execute(
            "return !document.getElementById('enroll').disabled;",
            serde_json::json!([]),
        )
        .await?;
    ensure!(enabled == true, "the button is offered again for a retry");
    ensure!(
        tenant.methods(&bob).await?.len() == methods.len(),
        "nothing enrolled"
    );
    ensure!(
        browser.credentials(&key).await?.len() == 1,
        "the key holds no second credential"
    );

    browser.close().await;
    tenant.shutdown().await;
    eprintln!("roaming enrollment: {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_ticket_enrolls_this_device_with_user_verification() -> anyhow::Result<()> {
    let _serial = serial().await;
    let started = Instant::now();
    let tenant = E2eTenant::start().await?;
    let alice = tenant.user_id("alice@example.com")?;
    let ticket_url = tenant.create_ticket(&alice, "webauthn-platform").await?;

    let browser = Browser::start("platform").await?;
    // A security key is plugged in too: the platform ticket must pick the built-in authenticator.
    let usb = browser
        .add_authenticator(VirtualAuthenticator::PresenceOnlyUsbKey)
        .await?;
    let platform = browser
        .add_authenticator(VirtualAuthenticator::Platform)
        .await?;
    enroll_in_browser(&browser, &ticket_url, "Set up this device").await?;

    let credential = single_credential(&browser, &platform).await?;
    ensure!(
        browser.credentials(&usb).await?.is_empty(),
        "the security key was not used"
    );
    let methods = tenant.methods(&alice).await?;
    let method = method_with_key(
        &methods,
        &credential.credential_id,
        &MethodType::WebauthnPlatform,
    )?;
    ensure!(
        method
            .transports
            .as_deref()
            .is_some_and(|t| t.iter().any(|t| t == "internal")),
        "transports from the browser: {method:#?}"
    );
    reopen_used_ticket(&browser, &ticket_url).await?;

    // The platform credential then passes alice's MFA (with user verification, which it requires). Unplug the
    // empty security key first: Chromium dispatches get() to every virtual authenticator and fails the request
    // (NotAllowedError) when one without a matching credential answers, as a person touching the wrong key would.
    browser.remove_authenticator(&usb).await?;
    let claims = sign_in_with_webauthn_mfa(&browser, &tenant, "alice@example.com").await?;
    ensure!(
        claims["sub"] == alice.as_str(),
        "ID token for alice: {claims}"
    );
    let after = single_credential(&browser, &platform).await?;
    ensure!(
        after.sign_count > credential.sign_count,
        "the platform authenticator signed the assertion: {after:?}"
    );

    browser.close().await;
    tenant.shutdown().await;
    eprintln!("platform enrollment + MFA sign-in: {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_security_key_passes_the_webauthn_mfa_challenge_of_the_code_flow() -> anyhow::Result<()> {
    let _serial = serial().await;
    let started = Instant::now();
    let tenant = E2eTenant::start().await?;
    let bob = tenant.user_id("bob@example.com")?;
    let ticket_url = tenant.create_ticket(&bob, "webauthn-roaming").await?;
    let browser = Browser::start("mfa").await?;
    let key = browser
        .add_authenticator(VirtualAuthenticator::PresenceOnlyUsbKey)
        .await?;
    enroll_in_browser(&browser, &ticket_url, "Add a security key").await?;
    let enrolled = single_credential(&browser, &key).await?;

    let claims = sign_in_with_webauthn_mfa(&browser, &tenant, "bob@example.com").await?;
    ensure!(claims["sub"] == bob.as_str(), "ID token for bob: {claims}");

    let after = single_credential(&browser, &key).await?;
    ensure!(
        after.sign_count > enrolled.sign_count,
        "the key signed an assertion: {after:?}"
    );
    let methods = tenant.methods(&bob).await?;
    let method = methods
        .iter()
        .find(|m| m.key_id.as_deref() == Some(enrolled.credential_id.as_str()))
        .context("the enrolled key")?;
    ensure!(
        method.last_auth_at.is_some(),
        "last_auth_at recorded: {method:#?}"
    );

    browser.close().await;
    tenant.shutdown().await;
    eprintln!("enrollment + WebAuthn MFA sign-in: {:?}", started.elapsed());
    Ok(())
}
