//! Config layer precedence, locking, and error messages that name the file and key.

use std::path::PathBuf;

use companion_client::config::{
    ConfigError, ConfigKey, ConfigSources, Layer, ManagedSource, PartialConfig,
};
use companion_protocol::api::EnrollmentType;

struct Files {
    _dir: tempfile::TempDir,
    user: PathBuf,
    managed: PathBuf,
}

fn files(user: &str, managed: &str) -> Files {
    let dir = tempfile::tempdir().expect("temp dir");
    let user_path = dir.path().join("user.toml");
    let managed_path = dir.path().join("managed.toml");
    std::fs::write(&user_path, user).expect("write user file");
    std::fs::write(&managed_path, managed).expect("write managed file");
    Files {
        _dir: dir,
        user: user_path,
        managed: managed_path,
    }
}

fn sources(files: &Files, env: &[(&str, &str)]) -> ConfigSources {
    ConfigSources {
        user_file: Some(files.user.clone()),
        managed: ManagedSource::TomlFile(files.managed.clone()),
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

#[test]
fn layers_apply_lowest_first_and_report_their_origin() {
    let f = files(
        r#"
auth0_url = "https://user.example.com"
client_id = "user-client"
proxy_url = "https://proxy.user.example.com"
browser = "firefox --new-window"
"#,
        r#"
client_id = "managed-client"
redirect_ports = [53180, 53181]
"#,
    );
    let effective = sources(
        &f,
        &[
            ("COMPANION_PROXY_URL", "http://127.0.0.1:8787"),
            ("COMPANION_LISTEN", "ignored: the proxy's variable"),
            ("UNRELATED", "x"),
        ],
    )
    .load()
    .expect("config loads");
    let config = effective.validate().expect("config is complete");
    assert_eq!(
        config.auth0_url.as_str(),
        "https://user.example.com/",
        "user file sets auth0_url"
    );
    assert_eq!(config.client_id, "managed-client", "managed beats user");
    assert_eq!(
        config.proxy_url.as_str(),
        "http://127.0.0.1:8787/",
        "env beats user"
    );
    assert_eq!(config.redirect_ports, [53180, 53181]);
    assert_eq!(
        config.audience, "https://passkey-companion/api",
        "default audience"
    );
    assert_eq!(config.enrollment_types, EnrollmentType::ALL);
    let browser = config.browser.expect("browser from user file");
    assert_eq!(
        (browser.program.as_str(), browser.args.as_slice()),
        ("firefox", &["--new-window".to_owned()][..])
    );

    assert_eq!(effective.layer_of(ConfigKey::Auth0Url), Some(Layer::User));
    assert_eq!(
        effective.layer_of(ConfigKey::ClientId),
        Some(Layer::Managed)
    );
    assert_eq!(
        effective.layer_of(ConfigKey::ProxyUrl),
        Some(Layer::Environment)
    );
    assert_eq!(
        effective.layer_of(ConfigKey::Audience),
        Some(Layer::Default)
    );
    assert_eq!(effective.layer_of(ConfigKey::SupportUrl), None);
    assert!(effective.is_locked(ConfigKey::ClientId));
    assert!(effective.is_locked(ConfigKey::RedirectPorts));
    assert!(!effective.is_locked(ConfigKey::Auth0Url));

    let entries = effective.entries();
    assert_eq!(entries.len(), ConfigKey::ALL.len(), "one entry per key");
    let client = entries
        .iter()
        .find(|e| e.key == "client_id")
        .expect("client_id entry");
    assert_eq!(client.value.as_deref(), Some("managed-client"));
    assert!(client.locked);
    assert_eq!(Layer::Managed.to_string(), "managed by your organization");
    let support = entries
        .iter()
        .find(|e| e.key == "support_url")
        .expect("support_url entry");
    assert_eq!((support.value.as_ref(), support.layer), (None, None));
}

#[test]
fn managed_keys_are_locked_against_the_environment_too() {
    let f = files(
        r#"client_id = "user-client""#,
        r#"
auth0_url = "https://acme.eu.auth0.com"
client_id = "managed-client"
proxy_url = "https://proxy.acme.example"
"#,
    );
    let effective = sources(
        &f,
        &[
            ("COMPANION_CLIENT_ID", "env-client"),
            ("COMPANION_AUTH0_URL", "http://localhost:9999"),
            ("COMPANION_BROWSER", "chromium --headless"),
        ],
    )
    .load()
    .expect("config loads");
    let config = effective.validate().expect("complete");
    assert_eq!(
        config.client_id, "managed-client",
        "env must not override a managed key"
    );
    assert_eq!(config.auth0_url.as_str(), "https://acme.eu.auth0.com/");
    assert_eq!(
        config.browser.map(|b| b.program),
        Some("chromium".to_owned()),
        "env still overrides unmanaged keys"
    );
    let mut ignored = effective.ignored_env().to_vec();
    ignored.sort();
    assert_eq!(
        ignored,
        [ConfigKey::Auth0Url, ConfigKey::ClientId],
        "ignored overrides are reported"
    );
}

#[test]
fn missing_files_are_empty_layers_and_missing_keys_name_the_variable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sources = ConfigSources {
        user_file: Some(dir.path().join("nope/config.toml")),
        managed: ManagedSource::TomlFile(dir.path().join("also-nope.toml")),
        env: vec![(
            "COMPANION_AUTH0_URL".into(),
            "https://acme.auth0.com".into(),
        )],
    };
    let effective = sources.load().expect("missing files are fine");
    let error = effective.validate().expect_err("client_id is required");
    assert!(
        matches!(
            error,
            ConfigError::Missing {
                key: ConfigKey::ClientId,
                ..
            }
        ),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains("client_id") && text.contains("COMPANION_CLIENT_ID"),
        "{text}"
    );
    assert!(
        text.contains("nope/config.toml"),
        "names the user file: {text}"
    );
}

#[test]
fn every_error_names_the_file_and_key() {
    let cases = [
        (r#"auth0_url = "http://acme.auth0.com""#, "auth0_url"),
        (r#"redirect_ports = [0]"#, "redirect_ports"),
        (r#"redirect_ports = "many""#, "redirect_ports"),
        (r#"enrollment_types = ["passkey"]"#, "enrollment_types"),
        (r#"client_id = 5"#, "client_id"),
        (r#"audience = 1.5"#, "audience"),
        (r#"browser = """#, "browser"),
        (r#"colour = "blue""#, "colour"),
    ];
    for (text, key) in cases {
        let f = files(text, "");
        let error = sources(&f, &[]).load().expect_err(text);
        let message = error.to_string();
        assert!(
            message.contains(&f.user.display().to_string()),
            "names the file: {message}"
        );
        assert!(message.contains(key), "names the key {key}: {message}");
    }
    let f = files("auth0_url = [", "");
    let message = sources(&f, &[]).load().expect_err("bad toml").to_string();
    assert!(message.contains(&f.user.display().to_string()), "{message}");

    let f = files("", r#"proxy_url = "ftp://x""#);
    let message = sources(&f, &[])
        .load()
        .expect_err("bad managed")
        .to_string();
    assert!(
        message.contains(&f.managed.display().to_string()) && message.contains("proxy_url"),
        "{message}"
    );

    let f = files("", "");
    let message = sources(&f, &[("COMPANION_REDIRECT_PORTS", "80-")])
        .load()
        .expect_err("bad env")
        .to_string();
    assert!(
        message.contains("COMPANION_REDIRECT_PORTS") && message.contains("redirect_ports"),
        "{message}"
    );
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A directory where the file should be cannot be read as a file.
    let path = dir.path().join("config.toml");
    std::fs::create_dir(&path).expect("mkdir");
    let error = PartialConfig::from_toml_file(&path).expect_err("a directory is not a file");
    assert!(error.to_string().contains("config.toml"), "{error}");
}

#[test]
fn env_layer_parses_lists() {
    let layer = PartialConfig::from_env([
        ("COMPANION_REDIRECT_PORTS", "53180-53182,53189"),
        ("COMPANION_ENROLLMENT_TYPES", "webauthn-roaming"),
        ("COMPANION_SUPPORT_URL", "https://help.example.com/passkeys"),
    ])
    .expect("valid env");
    assert_eq!(
        layer.redirect_ports.as_deref(),
        Some(&[53180, 53181, 53182, 53189][..])
    );
    assert_eq!(
        layer.enrollment_types.as_deref(),
        Some(&[EnrollmentType::WebauthnRoaming][..])
    );
    assert!(layer.support_url.is_some());
}
