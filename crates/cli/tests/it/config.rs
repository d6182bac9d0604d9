//! `passkeys config` and configuration errors.

use crate::support::{World, describe, stdout};

#[tokio::test]
async fn config_reports_the_layer_of_each_key() {
    let world = World::start().await;
    let output = world.run(&["config", "--json"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    let entry = |key: &str| entry(&json, key);
    assert_eq!(entry("auth0_url")["layer"], "environment");
    assert_eq!(entry("audience")["layer"], "environment");
    assert_eq!(entry("enrollment_types")["layer"], "default");
    assert_eq!(entry("support_url")["layer"], serde_json::Value::Null);
    assert_eq!(json["valid"], true);

    let human = world.run(&["config"]).await;
    assert!(
        stdout(&human).contains("(environment)"),
        "{}",
        describe(&human)
    );
}

#[tokio::test]
async fn bad_configuration_exits_2_naming_the_key() {
    let world = World::start().await;
    let output = world
        .command(&["status"])
        .env("COMPANION_PROXY_URL", "http://proxy.example.com")
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("COMPANION_PROXY_URL") && stderr.contains("proxy_url"),
        "{stderr}"
    );

    let output = world.command(&["frobnicate"]).output().await.expect("runs");
    assert_eq!(
        output.status.code(),
        Some(2),
        "usage error: {}",
        describe(&output)
    );
}

#[tokio::test]
async fn the_managed_override_is_the_managed_layer_and_locks_its_keys() {
    assert!(
        !std::path::Path::new("/etc/passkey-companion/config.toml").exists(),
        "setup: this machine has a real managed file, which the override never replaces; run on a machine \
         without /etc/passkey-companion/config.toml"
    );
    let world = World::start().await;
    let managed = world.dir.path().join("managed.toml");
    std::fs::write(
        &managed,
        format!(
            "client_id = \"companion-desktop\"\nproxy_url = \"{}\"\nsupport_url = \"https://help.example.com/\"\n",
            world.proxy_url
        ),
    )
    .expect("write the managed file");
    let managed_path = managed.display().to_string();
    let run = |args: &'static [&'static str]| {
        let mut command = world.command(args);
        command
            .env("COMPANION_MANAGED_CONFIG", &managed_path)
            .env("COMPANION_CLIENT_ID", "not-the-managed-client")
            .env("COMPANION_PROXY_URL", "http://127.0.0.1:1");
        command
    };

    let output = run(&["config", "--json"]).output().await.expect("runs");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    let entry = |key: &str| entry(&json, key);
    for key in ["client_id", "proxy_url", "support_url"] {
        assert_eq!(entry(key)["layer"], "managed", "{key}: {json}");
        assert_eq!(entry(key)["locked"], true, "{key}: {json}");
    }
    assert_eq!(entry("client_id")["value"], "companion-desktop");
    assert_eq!(
        entry("auth0_url")["layer"],
        "environment",
        "keys the file does not set stay the environment's"
    );
    assert_eq!(json["managed"]["location"], managed_path.as_str(), "{json}");
    assert_eq!(json["managed"]["dev_override"], true, "{json}");
    let mut ignored: Vec<&str> = json["ignored_env"]
        .as_array()
        .expect("ignored_env")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    ignored.sort_unstable();
    assert_eq!(ignored, ["COMPANION_CLIENT_ID", "COMPANION_PROXY_URL"]);

    let human = run(&["config"]).output().await.expect("runs");
    let text = stdout(&human);
    assert!(
        text.contains(&format!("managed settings: {managed_path}"))
            && text.contains("COMPANION_MANAGED_CONFIG"),
        "names the managed file: {}",
        describe(&human)
    );
    assert!(
        text.lines().any(|line| line.starts_with("client_id")
            && line.contains("(managed by your organization) [locked]")),
        "{}",
        describe(&human)
    );

    // The commands run with the managed values: the proxy URL from the file answers (signed out: exit 1, not a
    // connection failure to the ignored COMPANION_PROXY_URL).
    let listed = run(&["list", "--json"]).output().await.expect("runs");
    assert_eq!(listed.status.code(), Some(1), "{}", describe(&listed));
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(
        stderr.contains("passkeys login")
            && stderr.contains("COMPANION_PROXY_URL is ignored")
            && stderr.contains("COMPANION_CLIENT_ID is ignored"),
        "{}",
        describe(&listed)
    );
}

#[tokio::test]
async fn a_managed_override_naming_no_file_exits_2_naming_it() {
    let world = World::start().await;
    let missing = world.dir.path().join("no-such-managed.toml");
    let stderr = exits_2_with_managed(&world, &["status"], &missing).await;
    assert!(
        stderr.contains("no-such-managed.toml") && stderr.contains("COMPANION_MANAGED_CONFIG"),
        "{stderr}"
    );

    let bad = world.dir.path().join("bad-managed.toml");
    std::fs::write(&bad, "redirect_ports = \"many\"\n").expect("write");
    let stderr = exits_2_with_managed(&world, &["config"], &bad).await;
    assert!(
        stderr.contains("bad-managed.toml") && stderr.contains("redirect_ports"),
        "{stderr}"
    );
}

/// The entry of `key` in the JSON of `passkeys config --json`.
fn entry(json: &serde_json::Value, key: &str) -> serde_json::Value {
    json["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["key"] == key)
        .unwrap_or_else(|| panic!("{key} in {json}"))
        .clone()
}

/// Runs `passkeys args` with `COMPANION_MANAGED_CONFIG` naming `managed`, checks it exits 2 (a configuration
/// error) and returns its stderr.
async fn exits_2_with_managed(world: &World, args: &[&str], managed: &std::path::Path) -> String {
    let output = world
        .command(args)
        .env("COMPANION_MANAGED_CONFIG", managed)
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    String::from_utf8_lossy(&output.stderr).into_owned()
}
