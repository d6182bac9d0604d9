//! `passkeys config` and configuration errors.

use crate::support::{World, describe, stdout};

#[tokio::test]
async fn config_reports_the_layer_of_each_key() {
    let world = World::start().await;
    let output = world.run(&["config", "--json"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    let entry = |key: &str| {
        json["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .find(|e| e["key"] == key)
            .unwrap_or_else(|| panic!("{key} in {json}"))
            .clone()
    };
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
