//! The `companion-proxy` binary: configuration errors exit with 2 and name the flag and environment variable,
//! without echoing secrets.

use std::process::Command;

fn proxy() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_companion-proxy"));
    command.env_clear();
    command
}

#[test]
fn a_missing_tenant_url_is_named() {
    let output = proxy()
        .env("COMPANION_MGMT_CLIENT_ID", "companion-proxy")
        .env("COMPANION_MGMT_CLIENT_SECRET", "cli-secret-value")
        .output()
        .expect("runs");
    assert_eq!(
        output.status.code(),
        Some(2),
        "configuration errors exit with 2"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("COMPANION_AUTH0_URL"), "{stderr}");
    assert!(!stderr.contains("cli-secret-value"), "{stderr}");
}

#[test]
fn plain_http_to_a_remote_tenant_is_refused() {
    let output = proxy()
        .args([
            "--auth0-url",
            "http://acme.eu.auth0.com",
            "--mgmt-client-id",
            "id",
        ])
        .env("COMPANION_MGMT_CLIENT_SECRET", "cli-secret-value")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--auth0-url") && stderr.contains("loopback"),
        "{stderr}"
    );
}

#[test]
fn a_config_file_supplies_values_and_bad_files_are_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("proxy.toml");
    std::fs::write(
        &path,
        "auth0_url = \"https://acme.eu.auth0.com\"\nlisten = \"not an address\"\n",
    )
    .expect("write");
    let output = proxy()
        .arg("--config")
        .arg(&path)
        .env("COMPANION_MGMT_CLIENT_ID", "id")
        .env("COMPANION_MGMT_CLIENT_SECRET", "cli-secret-value")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("COMPANION_LISTEN"),
        "the file's bad value is named: {stderr}"
    );
    std::fs::write(&path, "auth0_url = [").expect("write");
    let output = proxy().arg("--config").arg(&path).output().expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid config file"));
}
