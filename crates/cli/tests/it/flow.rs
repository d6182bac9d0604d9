//! The whole CLI flow as a user runs it: login, status, list, rename, remove (with step-up), logout; the refresh
//! token lives in the real keyring between commands.

use companion_devtenant::world::demo;

use crate::support::{
    Browse, FORGED_CODE, NEW_KEY, Step, World, describe, keyring_secret, require_keyring_session,
    stdout,
};

const ALICE_KEY: &str = "webauthn-roaming|dev_aliceYubiKey0001";

#[tokio::test]
async fn login_list_rename_remove_with_step_up_and_logout() {
    require_keyring_session("login_list_rename_remove_with_step_up_and_logout");
    let world = World::start().await;

    let status = world.run(&["status", "--json"]).await;
    assert_eq!(
        status.status.code(),
        Some(1),
        "signed out exits 1: {}",
        describe(&status)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout(&status)).expect("status JSON");
    assert_eq!(json["signed_in"], false);

    let listed = world.run(&["list", "--json"]).await;
    assert_eq!(listed.status.code(), Some(1), "{}", describe(&listed));
    assert!(
        String::from_utf8_lossy(&listed.stderr).contains("passkeys login"),
        "{}",
        describe(&listed)
    );

    let login = world.run_with_browser(&["login"], Browse::Alice, 1).await;
    assert_eq!(login.status.code(), Some(0), "{}", describe(&login));
    assert!(
        !String::from_utf8_lossy(&login.stderr).contains("not saved"),
        "stored in the keyring: {}",
        describe(&login)
    );

    let refresh_token = keyring_secret(world.tenant.base_url())
        .await
        .expect("the refresh token is in the keyring");
    assert!(!refresh_token.is_empty());
    assert_not_on_disk(world.dir.path(), &refresh_token);

    let status = world.run(&["status", "--json"]).await;
    assert_eq!(status.status.code(), Some(0), "{}", describe(&status));
    let json: serde_json::Value = serde_json::from_str(&stdout(&status)).expect("status JSON");
    assert_eq!(json["signed_in"], true, "{json}");
    assert_eq!(json["sub"], demo::ALICE_USER_ID, "{json}");

    let listed = world.run(&["list", "--json"]).await;
    assert_eq!(listed.status.code(), Some(0), "{}", describe(&listed));
    let json: serde_json::Value = serde_json::from_str(&stdout(&listed)).expect("list JSON");
    let object = json.as_object().expect("an object");
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        ["authenticators"],
        "the proxy's body unchanged"
    );
    assert!(
        json["authenticators"]
            .as_array()
            .expect("array")
            .iter()
            .any(|a| a["id"] == ALICE_KEY),
        "{json}"
    );

    let human = world.run(&["list"]).await;
    assert_eq!(human.status.code(), Some(0), "{}", describe(&human));
    assert!(stdout(&human).contains(ALICE_KEY), "{}", describe(&human));

    let renamed = world.run(&["rename", ALICE_KEY, "Work key"]).await;
    assert_eq!(renamed.status.code(), Some(0), "{}", describe(&renamed));
    assert!(
        stdout(&renamed).contains("Work key"),
        "{}",
        describe(&renamed)
    );
    let bad = world.run(&["rename", ALICE_KEY, &"x".repeat(21)]).await;
    assert_eq!(bad.status.code(), Some(1), "{}", describe(&bad));

    let unconfirmed = world.run(&["remove", ALICE_KEY]).await;
    assert_eq!(
        unconfirmed.status.code(),
        Some(2),
        "no tty and no --yes: {}",
        describe(&unconfirmed)
    );

    // The plain login carried no MFA: the proxy asks for step-up, the CLI signs in again with MFA and retries.
    let removed = world
        .run_with_browser(&["remove", ALICE_KEY, "--yes"], Browse::Alice, 1)
        .await;
    assert_eq!(removed.status.code(), Some(0), "{}", describe(&removed));
    assert!(
        stdout(&removed).contains("Removed"),
        "{}",
        describe(&removed)
    );
    let urls = std::fs::read_to_string(world.url_file()).expect("urls");
    let step_up = urls.lines().nth(1).expect("a second sign-in");
    assert!(
        step_up.contains("max_age=0") && step_up.contains("acr_values="),
        "{step_up}"
    );

    let listed = world.run(&["list", "--json"]).await;
    assert!(
        !stdout(&listed).contains(ALICE_KEY),
        "{}",
        describe(&listed)
    );

    let logout = world.run(&["logout"]).await;
    assert_eq!(logout.status.code(), Some(0), "{}", describe(&logout));
    assert_eq!(
        keyring_secret(world.tenant.base_url()).await,
        None,
        "logout deletes the keyring entry"
    );
    let status = world.run(&["status", "--json"]).await;
    assert_eq!(status.status.code(), Some(1), "{}", describe(&status));
    let logout = world.run(&["logout"]).await;
    assert!(
        stdout(&logout).contains("Not signed in"),
        "{}",
        describe(&logout)
    );
}

fn assert_not_on_disk(dir: &std::path::Path, secret: &str) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            assert_not_on_disk(&path, secret);
        } else if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "the refresh token is on disk in {}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn without_a_keyring_login_says_so_and_nothing_is_saved() {
    let world = World::start().await;
    let nowhere = [(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/companion-test-bus",
    )];
    let login = world
        .run_with_browser_env(&["login"], Browse::Alice, 1, &nowhere)
        .await;
    assert_eq!(login.status.code(), Some(0), "{}", describe(&login));
    let stderr = String::from_utf8_lossy(&login.stderr);
    assert!(
        stderr.contains("keyring is unavailable"),
        "a clear message: {stderr}"
    );

    let status = world
        .command(&["status", "--json"])
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/companion-test-bus",
        )
        .output()
        .await
        .expect("runs");
    assert_eq!(status.status.code(), Some(1), "{}", describe(&status));
    let json: serde_json::Value = serde_json::from_str(&stdout(&status)).expect("status JSON");
    assert_eq!(json["signed_in"], false, "{json}");
    assert_eq!(json["keyring_available"], false, "{json}");
}

#[tokio::test]
async fn enroll_steps_up_opens_the_ticket_and_prints_the_new_key() {
    require_keyring_session("enroll_steps_up_opens_the_ticket_and_prints_the_new_key");
    let world = World::start().await;
    let login = world.run_with_browser(&["login"], Browse::Alice, 1).await;
    assert_eq!(login.status.code(), Some(0), "{}", describe(&login));

    // Alice already has MFA methods and this session has no MFA: the proxy asks for step-up first.
    let enrolled = world
        .run_steps(
            &["enroll", "roaming", "--json", "--timeout", "30"],
            &[],
            &[Step::SignIn(Browse::Alice), Step::FinishEnrollment],
        )
        .await;
    assert_eq!(enrolled.status.code(), Some(0), "{}", describe(&enrolled));
    let json: serde_json::Value = serde_json::from_str(&stdout(&enrolled)).expect("JSON");
    assert_eq!(json["id"], NEW_KEY, "{json}");
    assert_eq!(json["type"], "webauthn-roaming", "{json}");

    let listed = world.run(&["list", "--json"]).await;
    assert!(stdout(&listed).contains(NEW_KEY), "{}", describe(&listed));
    let logout = world.run(&["logout"]).await;
    assert_eq!(logout.status.code(), Some(0), "{}", describe(&logout));
}

#[tokio::test]
async fn a_refused_exchange_is_a_whole_failure_page_in_the_browser_and_exit_1() {
    let world = World::start().await;
    let login = world
        .run_steps(&["login"], &[], &[Step::SignInForgedCode(Browse::Alice)])
        .await;
    assert_eq!(
        login.status.code(),
        Some(1),
        "a refused sign-in is a user-facing failure: {}",
        describe(&login)
    );
    let stderr = String::from_utf8_lossy(&login.stderr);
    assert!(
        stderr.contains("invalid_grant"),
        "the typed error reaches the user: {}",
        describe(&login)
    );
    assert!(
        !stderr.contains(FORGED_CODE),
        "no code in the output: {}",
        describe(&login)
    );
    // `play` read the page to its end while `passkeys` was exiting: it must be whole, not cut off.
    let page = world.last_page().expect("the browser reached the loopback");
    assert!(
        page.contains(
            "Sign-in failed: the identity provider refused to issue the tokens (invalid_grant)."
        ) && page.contains("You can close this tab")
            && page.trim_end().ends_with("</html>"),
        "the whole failure page: {page}"
    );
    assert!(!page.contains("You are signed in"), "{page}");
}
