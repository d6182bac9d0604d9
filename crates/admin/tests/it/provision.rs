//! `plan`, `apply` and `export` against the dev tenant: from an empty tenant to one that matches the spec, then
//! idempotence (no Management writes), a foreign post-login binding that survives, a drifted grant that is
//! reported and narrowed, exported configurations that the proxy and the desktop client accept, secrets only on
//! request (0600), and failures that name their step and Auth0's error.

use companion_admin::{ApplyOptions, ChangeKind, apply, export, plan};
use companion_devtenant::oidc::tokens::MGMT_GRANT_AUDIENCE;
use companion_mgmt::{Method, Operation, OtherOperation};
use serde_json::json;

use crate::support::{
    ADMIN_SCOPES, admin, client_as, empty_tenant, empty_world, fast, sample_spec, tenant_with,
    writes,
};

/// The claims of a JWT, unverified (the tenant issued it in this test).
fn peek(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

static RAW: OtherOperation = OtherOperation {
    name: "test call",
    idempotent: false,
};

#[tokio::test]
async fn plan_apply_plan_is_empty_and_a_second_apply_writes_nothing() {
    let tenant = empty_tenant().await;
    let client = admin(&tenant);
    let spec = sample_spec();

    let planned = plan(&client, &spec).await.expect("plan on an empty tenant");
    let text = planned.to_string();
    for expected in [
        "+ create API \"https://passkey-companion/api\"",
        "+ create desktop client \"Passkey Companion (desktop)\"",
        "+ create proxy client \"Passkey Companion proxy (M2M)\"",
        "+ create proxy client grant",
        "~ update MFA factor webauthn-roaming",
        "~ update MFA factor recovery-code",
        "+ create post-login Action \"passkey-companion-post-login\"",
        "> deploy post-login Action",
        "~ update post-login trigger bindings",
    ] {
        assert!(text.contains(expected), "plan lists {expected:?}:\n{text}");
    }
    assert!(
        writes(&tenant).is_empty(),
        "plan only reads: {:?}",
        writes(&tenant)
    );

    let applied = apply(&client, &spec, &fast()).await.expect("apply");
    assert_eq!(
        applied.changes, planned.changes,
        "apply makes exactly the planned changes"
    );
    let desktop_id = applied.desktop_client_id.clone().expect("desktop id");
    let proxy_id = applied.proxy_client_id.clone().expect("proxy id");
    let mgmt = format!("{}/api/v2/", tenant.base_url());
    tenant.state.store.read(|s| {
        let api = s
            .apis
            .iter()
            .find(|a| a.identifier == spec.api.identifier)
            .expect("the API exists");
        assert!(api.allow_offline_access, "desktops get refresh tokens");
        let desktop = s.client(&desktop_id).expect("desktop client");
        assert_eq!(desktop.app_type, "native");
        assert_eq!(desktop.callbacks, spec.callbacks());
        assert!(
            desktop.client_secret.is_none(),
            "the desktop client is public"
        );
        assert_eq!(
            s.mgmt.refresh_tokens[&desktop_id]["rotation_type"], "rotating",
            "refresh tokens rotate"
        );
        let proxy = s.client(&proxy_id).expect("proxy client");
        assert!(
            proxy.client_secret.is_some(),
            "the proxy client is confidential"
        );
        let grants: Vec<_> = s
            .grants
            .iter()
            .filter(|g| g.client_id == proxy_id)
            .collect();
        assert_eq!(grants.len(), 1, "one grant for the proxy");
        assert!(grants[0].audience == mgmt || grants[0].audience == MGMT_GRANT_AUDIENCE);
        assert_eq!(
            grants[0].scope, spec.proxy.scopes,
            "exactly the spec's scopes"
        );
        assert!(s.grants.iter().all(|g| g.client_id != desktop_id));
        for factor in &spec.mfa.factors {
            assert_eq!(
                s.settings.factors.get(factor),
                Some(&true),
                "{factor} enabled"
            );
        }
        let action = &s.mgmt.actions[0];
        assert_eq!(action.name, spec.action.name);
        assert_eq!(action.versions.len(), 1, "deployed once");
        assert!(action.all_changes_deployed);
        assert!(action.code.contains("exports.onExecutePostLogin"));
        let names: Vec<&str> = action.secrets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["CLAIM_NAMESPACE", "CLIENT_IDS", "AUDIENCE"]);
        assert_eq!(
            action.secrets[1].value_digest,
            companion_devtenant::store::digest(&desktop_id),
            "the Action serves the desktop client"
        );
        let bindings = &s.mgmt.bindings["post-login"];
        assert_eq!(bindings.len(), 1);
        assert_eq!(bindings[0].action_id, action.id);
    });

    let again = plan(&client, &spec).await.expect("plan after apply");
    assert!(again.is_empty(), "nothing left to change:\n{again}");
    assert!(again.to_string().contains("No changes"));

    tenant.state.faults.clear_mgmt_calls();
    let second = apply(&client, &spec, &fast()).await.expect("second apply");
    assert!(
        second.is_empty(),
        "the second apply changes nothing:\n{second}"
    );
    assert!(
        writes(&tenant).is_empty(),
        "no Management writes on a second apply: {:?}",
        writes(&tenant)
    );
    assert!(
        !tenant.state.faults.mgmt_calls().is_empty(),
        "the second apply did read the tenant"
    );
    tenant.shutdown().await;
}

#[tokio::test]
async fn an_existing_foreign_post_login_binding_survives() {
    let tenant = empty_tenant().await;
    let client = admin(&tenant);
    let raw = |method: Method, path: String, body: Option<serde_json::Value>| {
        let client = client.clone();
        async move {
            client
                .request_json(Operation::Other(&RAW), method, &path, body.as_ref())
                .await
                .expect("raw call")
        }
    };
    let foreign = raw(
        Method::POST,
        "/actions/actions".to_owned(),
        Some(json!({"name": "corp-audit", "supported_triggers": [{"id": "post-login", "version": "v3"}], "code": "exports.onExecutePostLogin = async () => {};"})),
    )
    .await;
    let foreign_id = foreign["id"].as_str().expect("id").to_owned();
    for _ in 0..3 {
        raw(Method::GET, format!("/actions/actions/{foreign_id}"), None).await;
    }
    raw(
        Method::POST,
        format!("/actions/actions/{foreign_id}/deploy"),
        None,
    )
    .await;
    let bound = raw(
        Method::PATCH,
        "/actions/triggers/post-login/bindings".to_owned(),
        Some(json!({"bindings": [{"ref": {"type": "action_id", "value": foreign_id}, "display_name": "Corporate audit"}]})),
    )
    .await;
    assert_eq!(bound["bindings"].as_array().map(Vec::len), Some(1));

    let spec = sample_spec();
    let planned = plan(&client, &spec).await.expect("plan");
    assert!(
        planned.to_string().contains("kept: Corporate audit"),
        "the plan says the foreign binding is kept:\n{planned}"
    );
    apply(&client, &spec, &fast()).await.expect("apply");
    let listed = raw(
        Method::GET,
        "/actions/triggers/post-login/bindings".to_owned(),
        None,
    )
    .await;
    let bindings = listed["bindings"].as_array().expect("bindings");
    let names: Vec<&str> = bindings
        .iter()
        .map(|b| b["display_name"].as_str().expect("display name"))
        .collect();
    assert_eq!(
        names,
        ["Corporate audit", spec.action.name.as_str()],
        "the foreign binding stays first, ours is appended"
    );
    assert_eq!(bindings[0]["action"]["id"], foreign_id.as_str());
    assert!(plan(&client, &spec).await.expect("plan").is_empty());
    tenant.shutdown().await;
}

#[tokio::test]
async fn a_drifted_grant_is_reported_and_narrowed_to_the_spec() {
    let tenant = empty_tenant().await;
    let client = admin(&tenant);
    let spec = sample_spec();
    let applied = apply(&client, &spec, &fast()).await.expect("apply");
    let proxy_id = applied.proxy_client_id.expect("proxy id");
    // Someone widened the proxy's grant in the dashboard and granted it another API.
    tenant.state.store.write(|s| {
        let grant = s
            .grants
            .iter_mut()
            .find(|g| g.client_id == proxy_id)
            .expect("grant");
        grant.scope.push("delete:users".to_owned());
        grant
            .scope
            .retain(|s| s != "create:guardian_enrollment_tickets");
        s.grants.push(companion_devtenant::world::ClientGrantSeed {
            client_id: proxy_id.clone(),
            audience: spec.api.identifier.clone(),
            scope: Vec::new(),
        });
    });

    let planned = plan(&client, &spec).await.expect("plan");
    let text = planned.to_string();
    assert!(
        planned.drift.iter().any(|d| d.contains("delete:users")),
        "the widening is reported as drift:\n{text}"
    );
    assert!(text.contains("remove scopes: delete:users"), "{text}");
    assert!(
        text.contains("add scopes: create:guardian_enrollment_tickets"),
        "{text}"
    );
    assert!(
        planned
            .changes
            .iter()
            .any(|c| c.kind == ChangeKind::Delete && c.subject.contains(&spec.api.identifier)),
        "the grant to another API is removed:\n{text}"
    );

    tenant.state.faults.clear_mgmt_calls();
    apply(&client, &spec, &fast())
        .await
        .expect("apply fixes the drift");
    let fixed: Vec<_> = tenant.state.store.read(|s| {
        s.grants
            .iter()
            .filter(|g| g.client_id == proxy_id)
            .cloned()
            .collect()
    });
    assert_eq!(fixed.len(), 1, "only the Management API grant remains");
    assert_eq!(fixed[0].scope, spec.proxy.scopes, "exactly the spec again");
    let writes = writes(&tenant);
    assert_eq!(writes.len(), 2, "one PATCH and one DELETE: {writes:?}");
    assert!(plan(&client, &spec).await.expect("plan").is_empty());
    tenant.shutdown().await;
}

#[tokio::test]
async fn export_writes_configs_the_proxy_and_desktop_accept() {
    let tenant = empty_tenant().await;
    let client = admin(&tenant);
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_path = dir.path().join("client-secret");
    let mut spec = sample_spec();
    spec.proxy.secret_file = secret_path.display().to_string();

    let applied = apply(
        &client,
        &spec,
        &ApplyOptions {
            secrets_out: Some(secret_path.clone()),
            ..fast()
        },
    )
    .await
    .expect("apply");
    let proxy_id = applied.proxy_client_id.clone().expect("proxy id");
    let desktop_id = applied.desktop_client_id.clone().expect("desktop id");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret_path)
            .expect("secret file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the secret file is private");
    }
    let written = std::fs::read_to_string(&secret_path).expect("secret");
    let stored = tenant
        .state
        .store
        .read(|s| s.client(&proxy_id).and_then(|c| c.client_secret.clone()))
        .expect("stored secret");
    assert_eq!(
        written.trim(),
        stored,
        "the file holds the proxy client's secret"
    );
    assert!(
        !applied.to_string().contains(&stored),
        "the secret is never in the printed outcome"
    );

    let exported = export(&client, &spec).await.expect("export");
    assert!(
        !exported.proxy_toml.contains(&stored),
        "no secret in the proxy config"
    );

    // The proxy accepts its file, and the credentials in it get a Management token with the spec's scopes.
    let proxy_file = dir.path().join("proxy.toml");
    std::fs::write(&proxy_file, &exported.proxy_toml).expect("write");
    let settings = companion_proxy::config::Config {
        config: Some(proxy_file),
        ..Default::default()
    }
    .with_file()
    .expect("the proxy parses its file")
    .validate()
    .expect("the proxy accepts its settings");
    assert_eq!(settings.mgmt_client_id, proxy_id);
    assert_eq!(
        settings.step_up_max_age.as_secs(),
        spec.proxy.step_up_max_age
    );
    assert_eq!(
        settings.auth0_url.as_str().trim_end_matches('/'),
        tenant.base_url()
    );
    let proxy_client = client_as(
        &tenant,
        &settings.mgmt_client_id,
        secrecy::ExposeSecret::expose_secret(&settings.mgmt_client_secret),
    );
    let token = proxy_client
        .token_cache()
        .access_token()
        .await
        .expect("the exported credentials work");
    let claims = peek(secrecy::ExposeSecret::expose_secret(token.secret()));
    assert_eq!(
        claims["scope"],
        spec.proxy.scopes.join(" "),
        "the proxy gets exactly its scopes"
    );

    // The desktop app accepts the managed file, pointing at the desktop client, the API and the proxy.
    let desktop_file = dir.path().join("config.toml");
    let layer =
        companion_client::config::PartialConfig::from_toml(&desktop_file, &exported.desktop_toml)
            .expect("the desktop parses its managed file");
    assert_eq!(layer.client_id.as_deref(), Some(desktop_id.as_str()));
    assert_eq!(
        layer.audience.as_deref(),
        Some(spec.api.identifier.as_str())
    );
    assert_eq!(
        layer.redirect_ports.as_deref(),
        Some(spec.desktop.callback_ports.as_slice())
    );
    assert_eq!(
        layer
            .proxy_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/')),
        Some(spec.proxy.url.as_str())
    );
    assert_eq!(
        layer
            .auth0_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/')),
        Some(tenant.base_url())
    );
    tenant.shutdown().await;
}

#[tokio::test]
async fn failures_name_the_step_and_the_auth0_error() {
    let scopes: Vec<&str> = ADMIN_SCOPES
        .iter()
        .copied()
        .filter(|s| *s != "create:actions")
        .collect();
    let tenant = tenant_with(empty_world(&scopes)).await;
    let client = admin(&tenant);
    let error = apply(&client, &sample_spec(), &fast())
        .await
        .expect_err("creating the Action needs create:actions");
    let text = error.to_string();
    assert_eq!(error.step(), Some("create Action"), "{text}");
    assert!(text.contains("create Action"), "{text}");
    assert!(
        text.contains("insufficient_scope"),
        "Auth0's error code: {text}"
    );
    assert!(text.contains("create:actions"), "Auth0's message: {text}");
    // Steps before the failure stay applied: a rerun with the scope continues from there.
    assert!(tenant.state.store.read(|s| s.apis.len()) == 1);
    tenant.shutdown().await;
}

#[tokio::test]
async fn apply_succeeds_under_a_free_tenant_rate_limit() {
    let tenant = companion_devtenant::start(companion_devtenant::TenantOptions {
        world: empty_world(&ADMIN_SCOPES),
        key_bits: 1024,
        mgmt_rate_limit: Some(companion_devtenant::config::RateLimit {
            count: 10,
            per: std::time::Duration::from_millis(100),
        }),
        ..companion_devtenant::TenantOptions::for_test()
    })
    .await
    .expect("the tenant starts");
    let client = admin(&tenant);
    let spec = sample_spec();
    apply(&client, &spec, &fast())
        .await
        .expect("apply waits out the 429s");
    assert!(
        client.rate_limited() > 0,
        "the limit was hit and honoured (429s: {})",
        client.rate_limited()
    );
    assert!(plan(&client, &spec).await.expect("plan").is_empty());
    tenant.shutdown().await;
}

#[tokio::test]
async fn the_build_wait_is_bounded() {
    let clock = companion_devtenant::clock::ManualClock::starting_now();
    let tenant = companion_devtenant::start(companion_devtenant::TenantOptions {
        world: empty_world(&ADMIN_SCOPES),
        key_bits: 1024,
        clock: std::sync::Arc::new(clock),
        ..companion_devtenant::TenantOptions::for_test()
    })
    .await
    .expect("the tenant starts");
    let client = admin(&tenant);
    let options = ApplyOptions {
        build_poll: std::time::Duration::from_millis(5),
        build_timeout: std::time::Duration::from_millis(5),
        ..ApplyOptions::default()
    };
    let error = apply(&client, &sample_spec(), &options)
        .await
        .expect_err("two reads are not enough for the build");
    assert_eq!(error.step(), Some("wait for the Action build"), "{error}");
    assert!(
        error.to_string().contains("building"),
        "the last status is named: {error}"
    );
    tenant.shutdown().await;
}

#[tokio::test]
async fn the_demo_world_is_adopted_with_only_the_missing_pieces() {
    let mut world = companion_devtenant::world::World::demo();
    let admin_world = empty_world(&ADMIN_SCOPES);
    world.clients.extend(admin_world.clients);
    world.client_grants.extend(admin_world.client_grants);
    let tenant = tenant_with(world).await;
    let client = admin(&tenant);
    let spec = sample_spec();
    let planned = plan(&client, &spec).await.expect("plan");
    let subjects: Vec<String> = planned
        .changes
        .iter()
        .map(|c| format!("{:?} {}", c.kind, c.subject))
        .collect();
    assert_eq!(
        subjects,
        [
            "Update desktop client \"Passkey Companion (desktop)\"",
            "Create post-login Action \"passkey-companion-post-login\"",
            "Deploy post-login Action \"passkey-companion-post-login\"",
            "Update post-login trigger bindings",
        ],
        "the seeded API, clients, grant and factors already match:\n{planned}"
    );
    assert!(
        planned.changes[0].details[0].starts_with("refresh_token:"),
        "only refresh-token rotation differs: {:?}",
        planned.changes[0].details
    );
    assert!(planned.drift.is_empty(), "{:?}", planned.drift);
    apply(&client, &spec, &fast()).await.expect("apply");
    let desktop = companion_devtenant::world::demo::DESKTOP_CLIENT_ID;
    tenant.state.store.read(|s| {
        assert_eq!(s.mgmt.refresh_tokens[desktop]["rotation_type"], "rotating");
        assert_eq!(
            s.mgmt.actions[0].secrets[1].value_digest,
            companion_devtenant::store::digest(desktop),
            "the Action serves the existing desktop client"
        );
    });
    assert!(plan(&client, &spec).await.expect("plan").is_empty());
    tenant.shutdown().await;
}

#[tokio::test]
async fn plan_needs_only_read_scopes_and_policy_and_verification_follow_the_spec() {
    let read_only: Vec<&str> = ADMIN_SCOPES
        .iter()
        .copied()
        .filter(|s| s.starts_with("read:"))
        .collect();
    let tenant = tenant_with(empty_world(&read_only)).await;
    let mut spec = sample_spec();
    spec.mfa.policy = "all-applications".to_owned();
    spec.mfa.user_verification = "preferred".to_owned();
    let planned = plan(&admin(&tenant), &spec)
        .await
        .expect("plan works with read scopes only");
    let text = planned.to_string();
    assert!(
        text.contains("~ update MFA policy\n    [] -> [\"all-applications\"]"),
        "{text}"
    );
    assert!(
        text.contains("userVerification: \"required\" -> \"preferred\""),
        "{text}"
    );
    tenant.shutdown().await;

    let tenant = empty_tenant().await;
    let client = admin(&tenant);
    apply(&client, &spec, &fast()).await.expect("apply");
    assert_eq!(
        tenant.state.store.read(|s| s.settings.mfa_policies.clone()),
        ["all-applications"]
    );
    let roaming = tenant
        .state
        .mgmt
        .with_webauthn_settings(|w| w.roaming.user_verification.clone());
    assert_eq!(
        roaming.map(|uv| serde_json::to_value(uv).expect("json")),
        Some(json!("preferred"))
    );
    assert!(plan(&client, &spec).await.expect("plan").is_empty());
    tenant.shutdown().await;
}
