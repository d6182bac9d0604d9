//! Every `/v1/me/*` route against the dev tenant: list, rename, remove (step-up, lockout guard), enroll, the id
//! corpus, and isolation between users.

use companion_protocol::api::{AuthenticatorList, EnrollmentResponse, challenge};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::harness::{ALICE, ALICE_KEY, ALICE_MAC, ALICE_RECOVERY, ALICE_TOTP, BOB, World, enc};

#[tokio::test]
async fn list_shows_the_callers_methods_with_display_names() {
    let world = World::start().await;
    let answer = world.list(&world.token(ALICE, None)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let list: AuthenticatorList = serde_json::from_value(answer.body.clone()).expect("list body");
    let find = |id: &str| {
        list.authenticators
            .iter()
            .find(|a| a.id == id)
            .unwrap_or_else(|| panic!("{id} listed: {}", answer.body))
    };
    assert_eq!(list.authenticators.len(), 4, "alice's four seeded methods");
    let key = find(ALICE_KEY);
    assert_eq!(key.display_name, "YubiKey 5C", "the user's name first");
    assert_eq!(
        key.provider.as_deref(),
        Some("YubiKey 5 Series"),
        "provider from the AAGUID"
    );
    let mac = find(ALICE_MAC);
    assert_eq!(mac.name, None);
    assert_eq!(mac.display_name, "iCloud Keychain", "provider when unnamed");
    assert_eq!(find(ALICE_TOTP).display_name, "Authenticator app");
    assert_eq!(find(ALICE_RECOVERY).display_name, "Recovery code");
    assert!(
        list.authenticators.iter().all(|a| a.confirmed),
        "confirmed defaults to true"
    );
    assert!(
        list.authenticators.iter().all(|a| a.removable),
        "three usable factors: each one is removable"
    );
    for a in &list.authenticators {
        assert_ne!(a.display_name, "Passkey");
    }
    let bob = world.list(&world.token(BOB, None)).await;
    assert_eq!(bob.status, 200);
    assert_eq!(
        bob.body["authenticators"],
        serde_json::json!([]),
        "bob sees nothing of alice's"
    );
    let calls = world.tenant.state.faults.mgmt_calls();
    assert!(
        calls.iter().all(|c| c.path.contains("auth0%7C")),
        "user ids are percent-encoded upstream"
    );
    world.stop().await;
}

#[tokio::test]
async fn rename_changes_only_the_callers_method() {
    let world = World::start().await;
    let alice = world.token(ALICE, None);
    let answer = world.rename(&alice, &enc(ALICE_MAC), "Work MacBook").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["id"], ALICE_MAC);
    assert_eq!(answer.body["name"], "Work MacBook");
    assert_eq!(answer.body["display_name"], "Work MacBook");
    assert_eq!(answer.body["confirmed"], true);
    let listed = world.list(&alice).await;
    let names: Vec<&str> = listed.body["authenticators"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(names.contains(&"Work MacBook"), "{names:?}");

    // Bob cannot rename alice's method: 404, and no PATCH ever reaches Auth0.
    let patches = world.mgmt_calls_of("PATCH");
    let bob = world.token(BOB, Some(0));
    let answer = world.rename(&bob, &enc(ALICE_KEY), "Mine now").await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.code(), "not_found");
    assert_eq!(
        world.mgmt_calls_of("PATCH"),
        patches,
        "no PATCH for a foreign id"
    );

    // Names are validated before any upstream call.
    let before = world.mgmt_calls();
    for bad in [
        String::new(),
        "   ".to_owned(),
        "x".repeat(21),
        "tab\there".to_owned(),
    ] {
        let answer = world.rename(&alice, &enc(ALICE_KEY), &bad).await;
        assert_eq!(answer.status, 400, "{bad:?}: {}", answer.body);
        assert_eq!(answer.code(), "invalid_request");
    }
    for body in [
        serde_json::json!({}),
        serde_json::json!({"name": 5}),
        serde_json::json!({"name": "ok", "user_id": BOB}),
    ] {
        let answer = world
            .send(
                reqwest::Method::PATCH,
                &format!("/v1/me/authenticators/{}", enc(ALICE_KEY)),
                Some(&alice),
                Some(body.clone()),
            )
            .await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert_eq!(answer.code(), "invalid_request");
    }
    assert_eq!(
        world.mgmt_calls(),
        before,
        "no upstream call for invalid bodies"
    );
    let answer = world
        .rename(&alice, "totp%7Cdev_doesNotExist0001", "x")
        .await;
    assert_eq!(answer.status, 404);
    world.stop().await;
}

#[tokio::test]
async fn removal_needs_a_recent_mfa() {
    let world = World::start().await;
    let before = world.mgmt_calls();
    let max_age = world.state.settings.step_up_max_age.as_secs();
    for (what, mfa_age) in [("no MFA", None), ("MFA too old", Some(max_age as i64 + 1))] {
        let answer = world
            .delete(&world.token(ALICE, mfa_age), &enc(ALICE_KEY))
            .await;
        assert_eq!(answer.status, 403, "{what}: {}", answer.body);
        assert_eq!(answer.code(), "step_up_required");
        assert_eq!(
            answer.header("www-authenticate"),
            Some(challenge::step_up(max_age)),
            "{what}: RFC 9470 challenge"
        );
    }
    assert_eq!(
        world.mgmt_calls(),
        before,
        "step-up is checked before any upstream call"
    );
    let answer = world
        .delete(&world.token(ALICE, Some(10)), &enc(ALICE_KEY))
        .await;
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_eq!(world.mgmt_calls_of("DELETE"), 1);
    let listed = world.list(&world.token(ALICE, None)).await;
    assert!(
        !listed.body.to_string().contains(ALICE_KEY),
        "the key is gone: {}",
        listed.body
    );
    world.stop().await;
}

#[tokio::test]
async fn the_lockout_guard_keeps_the_last_usable_factor() {
    let world = World::start().await;
    let alice = world.token(ALICE, Some(0));
    // A lost key is removable while other factors remain.
    assert_eq!(world.delete(&alice, &enc(ALICE_KEY)).await.status, 204);
    assert_eq!(world.delete(&alice, &enc(ALICE_TOTP)).await.status, 204);
    // Left: the platform authenticator and a recovery code; the code does not count as a remaining factor.
    let listed = world.list(&alice).await;
    let mac = listed.body["authenticators"]
        .as_array()
        .expect("array")
        .iter()
        .find(|a| a["id"] == ALICE_MAC)
        .cloned()
        .expect("mac listed");
    assert_eq!(mac["removable"], false, "the last usable factor is marked");
    let deletes = world.mgmt_calls_of("DELETE");
    let answer = world.delete(&alice, &enc(ALICE_MAC)).await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert_eq!(answer.code(), "last_authenticator");
    assert_eq!(world.mgmt_calls_of("DELETE"), deletes, "no DELETE was sent");
    // The recovery code itself can go.
    assert_eq!(world.delete(&alice, &enc(ALICE_RECOVERY)).await.status, 204);
    // Someone else's method: 404, no DELETE.
    let bob = world.token(BOB, Some(0));
    let answer = world.delete(&bob, &enc(ALICE_MAC)).await;
    assert_eq!(answer.status, 404);
    assert_eq!(world.mgmt_calls_of("DELETE"), deletes + 1);
    world.stop().await;
}

#[tokio::test]
async fn concurrent_removals_cannot_both_pass_the_guard() {
    let world = World::start().await;
    let alice = world.token(ALICE, Some(0));
    assert_eq!(world.delete(&alice, &enc(ALICE_TOTP)).await.status, 204);
    // Two usable factors left; removing both at once must leave one.
    let (key, mac) = (enc(ALICE_KEY), enc(ALICE_MAC));
    let (a, b) = tokio::join!(world.delete(&alice, &key), world.delete(&alice, &mac));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 409], "exactly one removal passes");
    world.stop().await;
}

#[tokio::test]
async fn enrollment_tickets_and_their_step_up() {
    let world = World::start().await;
    // Bob has no MFA yet: no step-up needed.
    let answer = world
        .enroll(&world.token(BOB, None), "webauthn-roaming")
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let response: EnrollmentResponse = serde_json::from_value(answer.body.clone()).expect("body");
    assert!(
        response.ticket_url.starts_with(world.tenant.base_url()),
        "{}",
        response.ticket_url
    );
    let expires = OffsetDateTime::parse(&response.expires_at, &Rfc3339).expect("rfc 3339");
    let expected = world.now() + 5 * 24 * 3600;
    assert!(
        (expires.unix_timestamp() - expected).abs() <= 1,
        "expires in five days"
    );
    // Alice has MFA: a stale or missing MFA gets the step-up challenge.
    let answer = world
        .enroll(&world.token(ALICE, None), "webauthn-platform")
        .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.code(), "step_up_required");
    let tickets_before = world.mgmt_calls_of("POST");
    assert_eq!(tickets_before, 1, "only bob's ticket was created");
    let answer = world
        .enroll(&world.token(ALICE, Some(5)), "webauthn-platform")
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let ticket_call = world
        .tenant
        .state
        .faults
        .mgmt_calls()
        .into_iter()
        .rfind(|c| c.method == "POST")
        .expect("ticket call");
    assert_eq!(ticket_call.path, "/api/v2/guardian/enrollments/ticket");
    // Types outside the closed set are refused without an upstream call.
    let before = world.mgmt_calls();
    for kind in ["totp", "passkey", "webauthn_roaming", ""] {
        let answer = world.enroll(&world.token(BOB, Some(0)), kind).await;
        assert_eq!(answer.status, 400, "{kind}: {}", answer.body);
        assert_eq!(answer.code(), "invalid_request");
    }
    assert_eq!(world.mgmt_calls(), before);
    world.stop().await;
}

#[tokio::test]
async fn the_id_corpus_never_reaches_upstream() {
    let world = World::start().await;
    let alice = world.token(ALICE, Some(0));
    let before = world.mgmt_calls();
    let long = format!("totp%7C{}", "a".repeat(200));
    let corpus = [
        "..",
        "%2E%2E",
        "totp%7C..",
        "totp%7Cdev_x%2F..%2F..%2Fusers",
        "%2F",
        "totp%2Fdev_x",
        "totp%252Fdev_x",
        "totp%7Cdev%252F..",
        long.as_str(),
        "totp%7Cd%C3%A9v",
        "%C3%A9%7Cdev_x",
        "totp%7Cdev%20x",
        "totp%7Cdev_x%00",
        "totp",
        "%7C",
        "totp%7C",
        "%FF%FE",
    ];
    for raw in corpus {
        for answer in [
            world.delete(&alice, raw).await,
            world.rename(&alice, raw, "x").await,
        ] {
            assert!(
                answer.status == 400 || answer.status == 404,
                "{raw}: {} {}",
                answer.status,
                answer.body
            );
            if answer.status == 400 {
                assert_eq!(answer.code(), "invalid_id", "{raw}");
            }
        }
    }
    // Paths that do not match the route at all.
    for path in [
        "/v1/me/authenticators/",
        "/v1/me/authenticators/a/b",
        "/v1/me/authenticators/../x",
    ] {
        let answer = world
            .send(reqwest::Method::DELETE, path, Some(&alice), None)
            .await;
        assert!(
            answer.status == 404 || answer.status == 405,
            "{path}: {}",
            answer.status
        );
    }
    assert_eq!(
        world.mgmt_calls(),
        before,
        "zero upstream calls for the id corpus"
    );
    // Another user's well-formed id may cost one read, never a change.
    let bob = world.token(BOB, Some(0));
    let answer = world.delete(&bob, &enc(ALICE_KEY)).await;
    assert_eq!(answer.status, 404);
    assert_eq!(world.mgmt_calls_of("DELETE"), 0);
    world.stop().await;
}
