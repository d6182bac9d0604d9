//! Signing in on the tenant's pages in the harness's Chromium: the login form, the MFA answer (Alice's TOTP code
//! or a virtual security key), and the wait for the loopback page of whichever client (app or CLI) asked; and
//! the enrollment ticket's page, where the browser's virtual authenticator registers a credential.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};

use crate::browser::Browser;
use crate::tenant::DEMO_PASSWORD;

/// How long one page of the sign-in may take to show.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(20);
/// Alice's email, the demo user the scenarios sign in as.
pub const ALICE: &str = "alice@example.com";
/// Alice's demo TOTP secret (a published demo value of the local tenant).
const ALICE_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXP";
/// What the client's loopback page says once the sign-in went through (failure pages also say "you can close
/// this tab", so that alone proves nothing).
const SIGNED_IN: &str = "You are signed in";

/// Alice's current TOTP code (the tenant runs on the system clock).
///
/// # Errors
/// Never in practice: the secret is valid base32.
pub fn alice_totp() -> anyhow::Result<String> {
    let secret = totp_rs::Secret::Encoded(ALICE_TOTP_SECRET.to_owned()).to_bytes()?;
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret);
    Ok(totp.generate_current()?)
}

/// How the browser answers the tenant's MFA challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mfa {
    /// No MFA asked.
    None,
    /// Alice's TOTP code.
    Totp,
    /// Whatever virtual authenticator of the browser holds the credential.
    SecurityKey,
}

/// Fills the tenant's login form (already open in `browser`) as `email` with the demo password and submits it.
///
/// # Errors
/// When a field does not show within [`PAGE_TIMEOUT`] or WebDriver fails.
pub async fn submit_login_form(browser: &Browser, email: &str) -> anyhow::Result<()> {
    let username = browser
        .wait_for("input[name=username]", PAGE_TIMEOUT)
        .await?;
    browser.type_into(&username, email).await?;
    let password = browser
        .wait_for("input[name=password]", PAGE_TIMEOUT)
        .await?;
    browser.type_into(&password, DEMO_PASSWORD).await?;
    browser.screenshot("login").await?;
    let submit = browser
        .wait_for("button[type=submit]", PAGE_TIMEOUT)
        .await?;
    browser.click(&submit).await?;
    Ok(())
}

/// Answers the tenant's MFA page with `mfa` (nothing for [`Mfa::None`]).
///
/// # Errors
/// When the MFA page does not show within [`PAGE_TIMEOUT`] or WebDriver fails.
pub async fn answer_mfa(browser: &Browser, mfa: Mfa) -> anyhow::Result<()> {
    match mfa {
        Mfa::None => {}
        Mfa::Totp => {
            let code = browser.wait_for("input[name=code]", PAGE_TIMEOUT).await?;
            browser.screenshot("step-up-totp").await?;
            // The code, then Enter (WebDriver's key for Enter is U+E007).
            browser
                .type_into(&code, &format!("{}\u{e007}", alice_totp()?))
                .await?;
        }
        Mfa::SecurityKey => {
            let use_key = browser
                .wait_for("button[data-webauthn=get]", PAGE_TIMEOUT)
                .await?;
            browser.screenshot("step-up-security-key").await?;
            browser.click(&use_key).await?;
        }
    }
    Ok(())
}

/// Plays a sign-in a client opened at `url`: the login form as `email`, the `mfa` answer, then waits for the
/// client's own loopback page (on `127.0.0.1`) saying "You are signed in". `client` names the client in the
/// failure message ("the app", "the CLI").
///
/// # Errors
/// When a page does not show within [`PAGE_TIMEOUT`], with a screenshot and the page's text.
pub async fn sign_in_in_browser(
    browser: &Browser,
    url: &str,
    email: &str,
    mfa: Mfa,
    client: &str,
) -> anyhow::Result<()> {
    browser.goto(url).await?;
    submit_login_form(browser, email).await?;
    answer_mfa(browser, mfa).await?;
    // The client's loopback listener answers the redirect with its own page.
    let deadline = Instant::now() + PAGE_TIMEOUT;
    loop {
        let url = browser.current_url().await?;
        if url.starts_with("http://127.0.0.1:") && browser.body_text().await?.contains(SIGNED_IN) {
            browser.screenshot("signed-in").await?;
            return Ok(());
        }
        if Instant::now() > deadline {
            let shot = browser.screenshot("no-callback").await.ok();
            let text = browser.body_text().await.unwrap_or_default();
            bail!(
                "the sign-in did not reach {client}'s loopback page; on {url} (screenshot {shot:?}):\n{text}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens the enrollment ticket `ticket_url`, checks the page explains `heading`, presses the button (the
/// browser's virtual authenticator registers a credential) and checks the done page says what comes next.
///
/// # Errors
/// When a page does not show within [`PAGE_TIMEOUT`] or says something else.
pub async fn enroll_in_browser(
    browser: &Browser,
    ticket_url: &str,
    heading: &str,
) -> anyhow::Result<()> {
    browser.goto(ticket_url).await?;
    browser.wait_for("#enroll", PAGE_TIMEOUT).await?;
    let text = browser.body_text().await?;
    ensure!(
        text.contains(heading),
        "the ticket page explains what happens ({heading}); got:\n{text}"
    );
    browser.screenshot("ticket-page").await?;
    let button = browser.wait_for("#enroll", PAGE_TIMEOUT).await?;
    browser.click(&button).await?;
    browser.wait_for("#done", PAGE_TIMEOUT).await?;
    browser.screenshot("done").await?;
    let text = browser.body_text().await?;
    ensure!(
        text.contains("return to Passkey Companion"),
        "done page says what next; got:\n{text}"
    );
    Ok(())
}
