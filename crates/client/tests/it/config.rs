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

/// A managed override file and an empty stand-in for the platform's fixed managed file.
fn override_sources(f: &Files, platform: &std::path::Path, env: &[(&str, &str)]) -> ConfigSources {
    ConfigSources {
        managed: ManagedSource::with_override(
            ManagedSource::TomlFile(platform.to_path_buf()),
            Some(f.managed.clone()),
        ),
        ..sources(f, env)
    }
}

#[test]
fn the_managed_override_file_is_locked_like_the_system_file() {
    let f = files(
        r#"
client_id = "user-client"
support_url = "https://user.example.com/help"
"#,
        r#"
auth0_url = "http://localhost:8780"
client_id = "companion-desktop"
proxy_url = "http://127.0.0.1:8787"
enrollment_types = ["webauthn-roaming"]
"#,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let absent_platform_file = dir.path().join("etc/passkey-companion/config.toml");
    let effective = override_sources(
        &f,
        &absent_platform_file,
        &[
            ("COMPANION_CLIENT_ID", "env-client"),
            ("COMPANION_PROXY_URL", "http://127.0.0.1:9999"),
            ("COMPANION_BROWSER", "chromium"),
        ],
    )
    .load()
    .expect("config loads");
    let config = effective.validate().expect("complete");
    assert_eq!(
        config.client_id, "companion-desktop",
        "the override's keys beat the user file and the environment"
    );
    assert_eq!(
        config.proxy_url.as_str(),
        "http://127.0.0.1:8787/",
        "env cannot override a key of the override file"
    );
    assert_eq!(config.enrollment_types, [EnrollmentType::WebauthnRoaming]);
    assert_eq!(
        config.support_url.as_ref().map(url::Url::as_str),
        Some("https://user.example.com/help"),
        "keys the override does not set stay the user's"
    );
    assert_eq!(
        config.browser.map(|b| b.program).as_deref(),
        Some("chromium"),
        "env still sets unmanaged keys"
    );
    for key in [
        ConfigKey::Auth0Url,
        ConfigKey::ClientId,
        ConfigKey::ProxyUrl,
        ConfigKey::EnrollmentTypes,
    ] {
        assert_eq!(effective.layer_of(key), Some(Layer::Managed), "{key}");
        assert!(effective.is_locked(key), "{key} is locked");
    }
    assert!(!effective.is_locked(ConfigKey::SupportUrl));
    let mut ignored = effective.ignored_env().to_vec();
    ignored.sort();
    assert_eq!(ignored, [ConfigKey::ClientId, ConfigKey::ProxyUrl]);
    let info = effective.managed();
    assert_eq!(
        info.location.as_deref(),
        Some(f.managed.display().to_string().as_str()),
        "the override file is reported as the managed source"
    );
    assert!(info.dev_override, "reported as the development override");
    assert_eq!(info.ignored_override, None);
}

#[test]
fn a_real_managed_file_wins_over_the_override() {
    let f = files(
        "",
        r#"
client_id = "attacker-client"
auth0_url = "https://evil.example.com"
"#,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let platform = dir.path().join("config.toml");
    std::fs::write(
        &platform,
        r#"
auth0_url = "https://acme.eu.auth0.com"
client_id = "acme-desktop"
"#,
    )
    .expect("write the platform file");
    let effective = override_sources(&f, &platform, &[])
        .load()
        .expect("config loads");
    let values = effective.values();
    assert_eq!(
        values.client_id.as_deref(),
        Some("acme-desktop"),
        "on a managed install the fixed location is the managed layer"
    );
    assert_eq!(
        values.auth0_url.as_ref().map(url::Url::as_str),
        Some("https://acme.eu.auth0.com/")
    );
    assert!(effective.is_locked(ConfigKey::ClientId));
    let info = effective.managed();
    assert_eq!(
        info.location.as_deref(),
        Some(platform.display().to_string().as_str())
    );
    assert!(!info.dev_override);
    assert_eq!(
        info.ignored_override.as_deref(),
        Some(f.managed.display().to_string().as_str()),
        "the ignored override is reported"
    );
}

#[test]
fn override_errors_name_the_file_and_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let absent = dir.path().join("absent.toml");
    let f = files("", r#"redirect_ports = [0]"#);
    let error = override_sources(&f, &absent, &[])
        .load()
        .expect_err("a bad port");
    let text = error.to_string();
    assert!(
        text.contains(&f.managed.display().to_string()) && text.contains("redirect_ports"),
        "names the override file and the key: {text}"
    );

    let f = files("", r#"colour = "blue""#);
    let text = override_sources(&f, &absent, &[])
        .load()
        .expect_err("an unknown key")
        .to_string();
    assert!(
        text.contains(&f.managed.display().to_string()) && text.contains("colour"),
        "{text}"
    );

    let missing = ConfigSources {
        user_file: None,
        managed: ManagedSource::with_override(
            ManagedSource::TomlFile(absent),
            Some(dir.path().join("typo.toml")),
        ),
        env: Vec::new(),
    };
    let error = missing.load().expect_err("the override names no file");
    assert!(
        matches!(error, ConfigError::ManagedOverrideMissing { .. }),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains("typo.toml") && text.contains("COMPANION_MANAGED_CONFIG"),
        "names the file and the variable: {text}"
    );
}

#[test]
fn the_platform_sources_take_the_override_from_the_environment() {
    let env = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
    };
    let plain = ConfigSources::platform_with_env(env(&[("HOME", "/home/a")]));
    assert_eq!(plain.managed, ManagedSource::platform());
    assert_eq!(
        plain.user_file,
        Some(PathBuf::from(
            "/home/a/.config/passkey-companion/config.toml"
        ))
    );
    let empty = ConfigSources::platform_with_env(env(&[("COMPANION_MANAGED_CONFIG", "")]));
    assert_eq!(
        empty.managed,
        ManagedSource::platform(),
        "an empty variable is no override"
    );
    let overridden = ConfigSources::platform_with_env(env(&[
        ("COMPANION_MANAGED_CONFIG", "/srv/demo/managed.toml"),
        ("COMPANION_CLIENT_ID", "x"),
    ]));
    assert_eq!(
        overridden.managed,
        ManagedSource::Override {
            file: PathBuf::from("/srv/demo/managed.toml"),
            platform: Box::new(ManagedSource::platform()),
        }
    );
    #[cfg(all(unix, not(target_os = "macos")))]
    assert_eq!(
        ManagedSource::platform(),
        ManagedSource::TomlFile(PathBuf::from("/etc/passkey-companion/config.toml")),
        "the fixed location on Linux"
    );
}
