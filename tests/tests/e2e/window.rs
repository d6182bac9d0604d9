//! The real app window: the built `passkey-companion` under Xvfb, driven through `tauri-driver` +
//! `WebKitWebDriver`, against an in-process dev tenant and proxy. Its "system browser" is the harness's headless
//! Chromium with a virtual security key: every URL the app opens (`COMPANION_BROWSER`) is handed to it.
//!
//! Scenario: sign in → the demo methods are listed → add a security key → it appears → start setting up this
//! computer and cancel (polling stops, nothing added) → the service is busy (an injected 429): the countdown, then
//! the retry → rename the key → remove it (step-up with the virtual key) → it is gone → export the logs → sign out
//! → a second launch hands over. One app launch for all of it. Screenshots of each state land in
//! `target/e2e-artifacts/window-*.png`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use companion_devtenant::faults::FaultSpec;
use companion_e2e::browser::{Browser, VirtualAuthenticator};
use companion_e2e::proxy::{ProxyClock, start_proxy};
use companion_e2e::serial;
use companion_e2e::signin::{ALICE, Mfa, PAGE_TIMEOUT, enroll_in_browser, sign_in_in_browser};
use companion_e2e::tenant::E2eTenant;
use companion_e2e::window::{AppWindow, UrlInbox, build_app};
use serde_json::json;

const UI_TIMEOUT: Duration = Duration::from_secs(30);
const API_AUDIENCE: &str = "https://passkey-companion/api";
/// The Management API path of users (and their methods).
const USERS: &str = "/api/v2/users/";
/// The `Retry-After` of the injected 429: beyond the proxy's 2 s wait budget, so it answers busy.
const BUSY_SECONDS: u64 = 4;
/// The app's platform identifier (bundle id), which names its data and log folders.
const APP_IDENTIFIER: &str = "dev.passkey-companion.desktop";

/// The text of the element matching `css` in the app.
async fn text_of(window: &AppWindow, css: &str) -> anyhow::Result<String> {
    let value = window
        .execute(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            json!([css]),
        )
        .await?;
    Ok(value.as_str().unwrap_or_default().to_owned())
}

/// Waits until the element matching `css` has text containing `expected`.
async fn wait_text(window: &AppWindow, css: &str, expected: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + UI_TIMEOUT;
    loop {
        let text = text_of(window, css).await?;
        if text.contains(expected) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let shot = window.screenshot("wait-text").await.ok();
            anyhow::bail!("`{css}` never said {expected:?} (last {text:?}, screenshot {shot:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many list requests (`GET /api/v2/users/...`) the tenant has answered so far.
async fn list_calls(tenant: &E2eTenant) -> anyhow::Result<usize> {
    Ok(tenant
        .mgmt_calls()
        .await?
        .iter()
        .filter(|call| is_list_call(call))
        .count())
}

/// Whether a recorded Management call is a list request (`GET /api/v2/users/...`).
fn is_list_call(call: &serde_json::Value) -> bool {
    call["method"] == "GET" && call["path"].as_str().is_some_and(|p| p.starts_with(USERS))
}

/// The seconds the busy banner's `text` says it retries in ("Retrying in N s").
fn retry_seconds(text: &str) -> Option<u64> {
    text.split("Retrying in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
}

/// The ids of the rows the app lists.
async fn listed_ids(window: &AppWindow) -> anyhow::Result<Vec<String>> {
    let value = window
        .execute(
            "return Array.from(document.querySelectorAll('.method')).map(e => e.dataset.id);",
            json!([]),
        )
        .await?;
    Ok(value
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// The seconds the busy banner counts down from, once it shows.
async fn busy_seconds(window: &AppWindow) -> anyhow::Result<u64> {
    wait_text(window, "#banner-text", "busy").await?;
    let text = text_of(window, "#banner-text").await?;
    retry_seconds(&text).with_context(|| format!("the busy banner says when it retries: {text:?}"))
}

/// Cancelling an enrollment in the window: the "Finish in your browser" dialog closes, the list is as before, no
/// error shows, and the app stops polling the list.
async fn cancel_an_enrollment(
    window: &AppWindow,
    tenant: &E2eTenant,
    inbox: &mut UrlInbox,
    user: &str,
) -> anyhow::Result<()> {
    let listed = listed_ids(window).await?;
    let stored = tenant.stored_methods(user)?.len();
    window.click_on("#add-platform", UI_TIMEOUT).await?;
    window.wait_for("#dlg-browser[open]", UI_TIMEOUT).await?;
    wait_text(window, "#dlg-browser-text", "set up this computer").await?;
    let ticket = inbox.next(PAGE_TIMEOUT).await?;
    ensure!(
        ticket.starts_with(tenant.base_url()),
        "the app opened the tenant's enrollment ticket: {ticket}"
    );
    // The app polls the list while it waits: see one poll before cancelling.
    let polls_before = list_calls(tenant).await?;
    let deadline = Instant::now() + UI_TIMEOUT;
    while list_calls(tenant).await? == polls_before {
        ensure!(
            Instant::now() < deadline,
            "the app never polled the list while the enrollment was open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    window.screenshot("enroll-before-cancel").await?;
    window.click_on("#dlg-browser-cancel", UI_TIMEOUT).await?;
    window.wait_gone("#dlg-browser[open]", UI_TIMEOUT).await?;
    let polls_at_cancel = list_calls(tenant).await?;
    // Polls come every 1 s, then 1.5 s, ...: 3 s without one means the polling stopped.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let polls_after = list_calls(tenant).await?;
    ensure!(
        polls_after == polls_at_cancel,
        "the app stopped polling after Cancel ({polls_at_cancel} list calls at the cancel, {polls_after} 3 s later)"
    );
    ensure!(
        listed_ids(window).await? == listed,
        "the list is unchanged after a cancelled enrollment"
    );
    ensure!(
        tenant.stored_methods(user)?.len() == stored,
        "no method was added at the tenant"
    );
    let toast_hidden = window
        .execute("return document.getElementById('toast').hidden;", json!([]))
        .await?;
    ensure!(
        toast_hidden == json!(true),
        "a cancel shows no message: {:?}",
        text_of(window, "#toast").await?
    );
    window.wait_for("#add-platform", UI_TIMEOUT).await?;
    window.screenshot("enroll-cancelled").await?;
    Ok(())
}

/// The busy countdown: the tenant answers the proxy's next list call with 429 (`Retry-After` and
/// `x-ratelimit-reset` 4 s on), beyond the proxy's wait budget, so the app shows "busy, retry in N s", counts down,
/// and its retry succeeds.
async fn busy_then_retry(window: &AppWindow, tenant: &E2eTenant) -> anyhow::Result<()> {
    let listed = listed_ids(window).await?;
    let before = tenant.mgmt_calls().await?.len();
    tenant
        .inject_fault(
            &FaultSpec::status(USERS, 429)
                .method("GET")
                .times(1)
                .retry_after(BUSY_SECONDS),
        )
        .await?;
    window.click_on("#refresh", UI_TIMEOUT).await?;
    let first = busy_seconds(window).await?;
    ensure!(
        (1..=BUSY_SECONDS).contains(&first),
        "the countdown starts from the service's delay ({BUSY_SECONDS} s), got {first}"
    );
    window.screenshot("busy").await?;
    // It counts down.
    let deadline = Instant::now() + Duration::from_secs(BUSY_SECONDS + 5);
    loop {
        let text = text_of(window, "#banner-text").await?;
        if retry_seconds(&text).is_some_and(|n| n < first) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the busy banner did not count down from {first}: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    window.screenshot("busy-counting-down").await?;
    // The retry goes through: the banner goes, the list stays, and the tenant saw the injected 429 then a 200.
    window
        .wait_gone("#banner", Duration::from_secs(BUSY_SECONDS + 10))
        .await?;
    let calls = tenant.mgmt_calls().await?;
    let lists: Vec<(u64, bool)> = calls
        .iter()
        .skip(before)
        .filter(|c| is_list_call(c))
        .map(|c| (c["status"].as_u64().unwrap_or(0), c["injected"] == true))
        .collect();
    ensure!(
        lists.first() == Some(&(429, true))
            && lists
                .get(1)
                .is_some_and(|(status, injected)| *status == 200 && !injected),
        "the first list call got the injected 429 and the retry a real 200: {lists:?}"
    );
    ensure!(
        listed_ids(window).await? == listed,
        "the list is shown again after the retry"
    );
    ensure!(
        tenant.faults().await?.iter().all(|f| f["remaining"] != 1),
        "the fault was used up"
    );
    window.screenshot("busy-retried").await?;
    Ok(())
}

/// Export logs from the window: the command writes the log to the Downloads folder, the toast names the file, and
/// the file holds JSON lines and no token.
async fn export_logs(window: &AppWindow, downloads: &std::path::Path) -> anyhow::Result<()> {
    window.click_on("#export-logs", UI_TIMEOUT).await?;
    wait_text(window, "#toast", "Logs saved to").await?;
    window.screenshot("logs-exported").await?;
    let toast = text_of(window, "#toast").await?;
    let exported = downloads.join("passkey-companion-logs.jsonl");
    ensure!(
        toast.contains(&exported.display().to_string()),
        "the toast names the exported file {}: {toast:?}",
        exported.display()
    );
    check_log(
        &exported,
        "the exported log",
        &["signed in", "added a method"],
        &[
            "eyJ",
            "access_token",
            "refresh_token",
            "Bearer ",
            "code_verifier",
        ],
    )
}

/// Checks the log at `path` (`what`, for messages): not empty, every line JSON, each of `actions` recorded, none
/// of `secrets` in it.
fn check_log(
    path: &std::path::Path,
    what: &str,
    actions: &[&str],
    secrets: &[&str],
) -> anyhow::Result<()> {
    let log =
        std::fs::read_to_string(path).with_context(|| format!("{what} {}", path.display()))?;
    ensure!(!log.trim().is_empty(), "{what} is not empty");
    ensure!(
        log.lines()
            .all(|line| serde_json::from_str::<serde_json::Value>(line).is_ok()),
        "every line of {what} is JSON:\n{log}"
    );
    ensure!(
        actions.iter().all(|action| log.contains(action)),
        "{what} records the actions {actions:?}:\n{log}"
    );
    for secret in secrets {
        ensure!(!log.contains(secret), "no {secret:?} in {what}:\n{log}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_window_adds_renames_and_removes_a_security_key() -> anyhow::Result<()> {
    let _serial = serial().await;
    let started = Instant::now();
    let app = build_app()?;
    let built = started.elapsed();

    let tenant = E2eTenant::start().await?;
    let proxy_clock = ProxyClock::default();
    let proxy_url = start_proxy(&tenant, proxy_clock.clone()).await?;
    let mut inbox = UrlInbox::new()?;
    let home = tempfile::Builder::new().prefix("e2e-app-home-").tempdir()?;
    // "Export logs" writes to the Downloads folder, which the XDG user-dirs file names.
    let downloads = home.path().join("Downloads");
    std::fs::create_dir_all(&downloads)?;
    std::fs::create_dir_all(home.path().join("config"))?;
    std::fs::write(
        home.path().join("config/user-dirs.dirs"),
        format!("XDG_DOWNLOAD_DIR=\"{}\"\n", downloads.display()),
    )?;
    let env: Vec<(String, String)> = vec![
        ("COMPANION_AUTH0_URL".into(), tenant.base_url().to_owned()),
        ("COMPANION_CLIENT_ID".into(), "companion-desktop".into()),
        ("COMPANION_AUDIENCE".into(), API_AUDIENCE.into()),
        ("COMPANION_PROXY_URL".into(), proxy_url),
        ("COMPANION_BROWSER".into(), inbox.command()),
        (
            "XDG_CONFIG_HOME".into(),
            home.path().join("config").display().to_string(),
        ),
        (
            "XDG_DATA_HOME".into(),
            home.path().join("data").display().to_string(),
        ),
    ];

    let window = AppWindow::launch("window", &app, &env).await?;
    eprintln!(
        "window test: app built in {built:?}, first view painted {:?} after the session request",
        window.started_in
    );

    // Signed out.
    window.wait_for("#sign-in", UI_TIMEOUT).await?;
    let text = window.text().await?;
    ensure!(
        text.contains("Passkey Companion"),
        "the signed-out view names the product:\n{text}"
    );
    window.screenshot("signed-out").await?;

    // Sign in in the "system browser".
    let browser = Browser::start("window-browser").await?;
    let key = browser
        .add_authenticator(VirtualAuthenticator::PresenceOnlyUsbKey)
        .await?;
    // Cancel while the browser is open goes back to the signed-out view, ready to start again.
    window.click_on("#sign-in", UI_TIMEOUT).await?;
    window.wait_for("#sign-in-waiting", UI_TIMEOUT).await?;
    let abandoned = inbox.next(PAGE_TIMEOUT).await?;
    ensure!(
        abandoned.contains("code_challenge_method=S256"),
        "PKCE S256: {abandoned}"
    );
    window.click_on("#sign-in-cancel", UI_TIMEOUT).await?;
    window.wait_gone("#sign-in-waiting", UI_TIMEOUT).await?;
    window.wait_for("#sign-in", UI_TIMEOUT).await?;
    ensure!(
        window.find("#sign-in-error").await?.is_some()
            && text_of(&window, "#sign-in-error").await?.is_empty(),
        "a cancel is not reported as an error"
    );

    window.click_on("#sign-in", UI_TIMEOUT).await?;
    window.wait_for("#sign-in-waiting", UI_TIMEOUT).await?;
    wait_text(&window, "#sign-in-waiting", "Continue in your browser").await?;
    window.screenshot("signing-in").await?;
    let url = inbox.next(PAGE_TIMEOUT).await?;
    ensure!(
        url.starts_with(tenant.base_url()),
        "the app opened the tenant's authorize URL: {url}"
    );
    sign_in_in_browser(&browser, &url, ALICE, Mfa::None, "the app").await?;

    // The demo methods.
    window
        .wait_for(
            r#".method[data-id="totp|dev_aliceTotp0000001"]"#,
            UI_TIMEOUT,
        )
        .await?;
    window
        .wait_for(
            r#".method[data-id="webauthn-roaming|dev_aliceYubiKey0001"]"#,
            UI_TIMEOUT,
        )
        .await?;
    let text = window.text().await?;
    for expected in [
        "Alice Example",
        "YubiKey 5C",
        "Passkeys and security keys",
        "Other ways to verify",
    ] {
        ensure!(
            text.contains(expected),
            "the signed-in view shows {expected:?}:\n{text}"
        );
    }
    window.screenshot("signed-in").await?;

    // Add a security key: the proxy asks for a recent MFA first (TOTP here), then the ticket opens in the
    // browser and the virtual key registers.
    window.click_on("#add-roaming", UI_TIMEOUT).await?;
    wait_text(&window, "#dlg-remove-title", "Verify it's you").await?;
    window.screenshot("enroll-step-up-asked").await?;
    window.click_on("#dlg-remove-confirm", UI_TIMEOUT).await?;
    let step_up = inbox.next(PAGE_TIMEOUT).await?;
    ensure!(
        step_up.contains("acr_values="),
        "the step-up asks for MFA: {step_up}"
    );
    sign_in_in_browser(&browser, &step_up, ALICE, Mfa::Totp, "the app").await?;
    window.wait_for("#dlg-browser[open]", UI_TIMEOUT).await?;
    window.screenshot("enrolling").await?;
    let ticket = inbox.next(PAGE_TIMEOUT).await?;
    enroll_in_browser(&browser, &ticket, "Add a security key").await?;
    ensure!(
        browser.credentials(&key).await?.len() == 1,
        "the virtual key holds the new credential"
    );
    let added = window
        .wait_for(
            r#".method.highlight[data-type="webauthn-roaming"]"#,
            UI_TIMEOUT,
        )
        .await?;
    window.wait_gone("#dlg-browser[open]", UI_TIMEOUT).await?;
    let id = window
        .execute(
            "return document.querySelector('.method.highlight').dataset.id;",
            json!([]),
        )
        .await?
        .as_str()
        .context("the new row has an id")?
        .to_owned();
    ensure!(
        !added.is_empty() && id != "webauthn-roaming|dev_aliceYubiKey0001",
        "a new key: {id}"
    );
    window.screenshot("added").await?;
    let row = format!(r#".method[data-id="{id}"]"#);
    let user = tenant.user_id(ALICE)?;

    // Cancel an enrollment half-way, then a busy service: the countdown, then the retry.
    let section = Instant::now();
    cancel_an_enrollment(&window, &tenant, &mut inbox, &user).await?;
    let cancelled_in = section.elapsed();
    let section = Instant::now();
    busy_then_retry(&window, &tenant).await?;
    eprintln!(
        "window test: cancelled enrollment checked in {cancelled_in:?}, busy countdown and retry in {:?}",
        section.elapsed()
    );

    // Rename inline; an over-long name is refused before anything is sent.
    window
        .click_on(&format!("{row} [data-action=rename]"), UI_TIMEOUT)
        .await?;
    let input = window.wait_for("#rename-input", UI_TIMEOUT).await?;
    window
        .replace_text(&input, "A name that is far too long")
        .await?;
    wait_text(&window, "#rename-hint", "at most 20").await?;
    window.screenshot("rename-invalid").await?;
    window.replace_text(&input, "Backup key").await?;
    window.screenshot("renaming").await?;
    window
        .click_on(".rename button[type=submit]", UI_TIMEOUT)
        .await?;
    window.wait_gone("#rename-input", UI_TIMEOUT).await?;
    wait_text(&window, &format!("{row} .method-name"), "Backup key").await?;
    window.screenshot("renamed").await?;

    // Remove: confirmation naming it, then the step-up round trip with the new virtual key. The MFA of the
    // enrollment is still recent, so the proxy's clock moves ten minutes on until the step-up is asked for.
    proxy_clock.skew(Duration::from_secs(600));
    window
        .click_on(&format!("{row} [data-action=remove]"), UI_TIMEOUT)
        .await?;
    window.wait_for("#dlg-remove[open]", UI_TIMEOUT).await?;
    wait_text(&window, "#dlg-remove-title", "Remove “Backup key”?").await?;
    window.screenshot("confirm-remove").await?;
    window.click_on("#dlg-remove-confirm", UI_TIMEOUT).await?;
    wait_text(&window, "#dlg-remove-title", "Verify it's you").await?;
    proxy_clock.skew(Duration::ZERO);
    window.screenshot("step-up-asked").await?;
    window.click_on("#dlg-remove-confirm", UI_TIMEOUT).await?;
    window.wait_for("#dlg-browser[open]", UI_TIMEOUT).await?;
    window.screenshot("step-up-waiting").await?;
    let step_up = inbox.next(PAGE_TIMEOUT).await?;
    ensure!(
        step_up.contains("acr_values="),
        "the step-up asks for MFA: {step_up}"
    );
    sign_in_in_browser(&browser, &step_up, ALICE, Mfa::SecurityKey, "the app").await?;

    // Removed: guidance, then the row is gone here and at the tenant.
    window.wait_for("#dlg-removed[open]", UI_TIMEOUT).await?;
    let text = text_of(&window, "#dlg-removed").await?;
    for expected in [
        "“Backup key” was removed",
        "You can still sign in with",
        "YubiKey 5C",
        "Add a replacement now",
    ] {
        ensure!(
            text.contains(expected),
            "the after-removal dialog says {expected:?}:\n{text}"
        );
    }
    window.screenshot("removed").await?;
    window.click_on("#dlg-removed-close", UI_TIMEOUT).await?;
    window.wait_gone(&row, UI_TIMEOUT).await?;
    let stored = tenant.stored_methods(&user)?;
    ensure!(
        stored.iter().all(|m| m.id != id),
        "the tenant no longer has {id}: {stored:?}"
    );
    window.screenshot("after-remove").await?;

    // Export logs for support, through the window.
    let section = Instant::now();
    export_logs(&window, &downloads).await?;
    eprintln!(
        "window test: logs exported and checked in {:?}",
        section.elapsed()
    );

    // Sign out.
    window.click_on("#sign-out", UI_TIMEOUT).await?;
    window.wait_for("#sign-in", UI_TIMEOUT).await?;
    window.screenshot("signed-out-again").await?;

    // Single instance: a second launch hands over to the running app and exits.
    let second = tokio::process::Command::new(&app)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(UI_TIMEOUT, second)
        .await
        .context("a second launch exits instead of opening another window")??;
    ensure!(
        status.success(),
        "the second launch exits cleanly: {status}"
    );
    window.wait_for("#sign-in", UI_TIMEOUT).await?;

    window.close().await;
    browser.close().await;

    // The app logged to the platform log folder, as JSON lines, and no token reached the log.
    let log = home
        .path()
        .join("data")
        .join(APP_IDENTIFIER)
        .join("logs/passkey-companion.jsonl");
    check_log(
        &log,
        "the app's log",
        &["signed in", "removed a method"],
        &["eyJ"],
    )?;
    tenant.shutdown().await;
    eprintln!("window test: whole scenario {:?}", started.elapsed());
    Ok(())
}
