//! Passkey Companion desktop app: the Tauri v2 shell around `companion-client`.
//!
//! The shell stays thin: it shows the static `ui/` and exposes [`commands`] that parse input, call
//! `companion-client` and map its errors to one [`error::CommandError`]. Sign-in and every WebAuthn ceremony run in
//! the system browser, never in this webview, and no token ever crosses into it.
//!
//! [`run_app`] is generic over the Tauri [`Runtime`] so tests build the same app on the mock runtime.

pub mod commands;
pub mod error;
mod logging;
pub mod state;
mod webview;

use std::sync::Arc;

use companion_client::clock::SystemClock;
use companion_client::config::ConfigSources;
use companion_client::store::KeyringStore;
use tauri::{App, Builder, Context, Manager as _, Runtime};

pub use state::AppState;

/// The label of the app's only window, as declared in `tauri.conf.json` and the capabilities.
pub const MAIN_WINDOW: &str = "main";

/// Builds the application on any runtime with `state`: the real one in [`run`], the mock one in tests.
///
/// # Errors
/// When Tauri cannot set up the app or create its main window (for example, no display).
pub fn run_app<R: Runtime>(
    builder: Builder<R>,
    context: Context<R>,
    state: AppState,
) -> tauri::Result<App<R>> {
    let handler: fn(tauri::ipc::Invoke<R>) -> bool = tauri::generate_handler![
        commands::status,
        commands::sign_in,
        commands::cancel_sign_in,
        commands::step_up,
        commands::list,
        commands::rename,
        commands::remove,
        commands::enroll,
        commands::cancel_enroll,
        commands::sign_out,
        commands::config,
        commands::export_logs,
    ];
    builder
        .manage(state)
        // Debug-level timeline of start-up (`COMPANION_LOG=debug`): page loads and commands, by time since start.
        .on_page_load(|_webview, payload| {
            tracing::debug!(
                event = ?payload.event(),
                since_start_ms = webview::since_start_ms(),
                "page load"
            );
        })
        .invoke_handler(move |invoke| {
            tracing::debug!(
                command = invoke.message.command(),
                since_start_ms = webview::since_start_ms(),
                "command invoked"
            );
            handler(invoke)
        })
        .build(context)
}

/// Runs the desktop app on the system webview until its last window closes: one instance (a second launch
/// focuses the first), the system configuration layers, the OS keyring, JSON logs in the platform log folder.
///
/// Start-up overlaps its slow parts: the session's first check (keyring read, token refresh) runs on the async
/// runtime while GTK and WebKit create the window, so the UI's first `status` finds it done or joins it.
///
/// Returns a failure exit code, after printing why, when the app cannot start.
pub fn run() -> std::process::ExitCode {
    let started = webview::mark_start();
    let startup =
        webview::Startup::from_disable_list(std::env::var(webview::DISABLE_ENV).ok().as_deref());
    let state = AppState::load(
        &ConfigSources::system(),
        Arc::new(KeyringStore::new()),
        Arc::new(SystemClock),
    );
    if startup.session_prefetch
        && let Some(warm_up) = state.warm_up()
    {
        tauri::async_runtime::spawn(warm_up);
    }
    let builder = Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
                let _ = window.unminimize();
                let _ = window.show();
                let _ = window.set_focus();
            }
        }))
        .setup(move |app| {
            match logging::init(app.handle()) {
                Ok(path) => app.state::<AppState>().set_log_file(path),
                Err(error) => eprintln!("passkey-companion: logging disabled: {error}"),
            }
            tracing::info!(
                since_start_ms = webview::since_start_ms(),
                version = env!("CARGO_PKG_VERSION"),
                webview_tuning = startup.webview_tuning,
                session_prefetch = startup.session_prefetch,
                "started"
            );
            if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
                let tuning = startup.webview_tuning;
                let set_up = window.with_webview(move |platform| {
                    #[cfg(target_os = "linux")]
                    webview::set_up(&platform.inner(), started, tuning);
                    #[cfg(not(target_os = "linux"))]
                    let _ = (platform, started, tuning);
                });
                if let Err(error) = set_up {
                    tracing::warn!(%error, "cannot set up the webview");
                }
            }
            Ok(())
        });
    match run_app(builder, tauri::generate_context!(), state) {
        Ok(app) => {
            app.run(|_handle, _event| {});
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("passkey-companion: could not start: {error}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tauri::{Manager as _, RunEvent};

    use super::*;

    fn unconfigured_state() -> AppState {
        AppState::load(
            &ConfigSources::env_only(Vec::new()),
            Arc::new(companion_client::store::MemoryStore::new()),
            Arc::new(SystemClock),
        )
    }

    /// The configuration file, as the bundler reads it (the generated context trims the bundle section).
    const CONFIG_JSON: &str = include_str!("../tauri.conf.json");

    #[test]
    fn the_app_starts_with_its_main_window_on_the_mock_runtime() {
        let app = run_app(
            tauri::test::mock_builder(),
            tauri::generate_context!(),
            unconfigured_state(),
        )
        .expect("the app builds from tauri.conf.json");

        let config = app.config();
        assert_eq!(
            config.product_name.as_deref(),
            Some("Passkey Companion"),
            "product name"
        );
        assert_eq!(
            config.identifier, "dev.passkey-companion.desktop",
            "bundle identifier"
        );
        assert!(
            config.app.with_global_tauri,
            "the UI calls window.__TAURI__.core.invoke"
        );
        let window = config
            .app
            .windows
            .iter()
            .find(|window| window.label == MAIN_WINDOW)
            .expect("main window config");
        assert_eq!((window.width, window.height), (900.0, 640.0), "window size");
        assert_eq!(window.title, "Passkey Companion", "window title");

        // Windows from the config are created when the event loop starts: run it, look for the window on
        // `Ready`, then destroy it, which ends the (mock) loop.
        let saw_main_window = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&saw_main_window);
        app.run_return(move |handle, event| {
            if matches!(event, RunEvent::Ready) {
                let window = handle
                    .get_webview_window(MAIN_WINDOW)
                    .expect("tauri.conf.json declares the window that the capabilities name");
                seen.store(true, Ordering::SeqCst);
                window.destroy().expect("the mock window can be destroyed");
            }
        });
        assert!(
            saw_main_window.load(Ordering::SeqCst),
            "the event loop became ready with the main window"
        );
    }

    #[test]
    fn the_content_security_policy_is_strict() {
        let context: Context<tauri::test::MockRuntime> = tauri::generate_context!();
        let csp = context
            .config()
            .app
            .security
            .csp
            .as_ref()
            .expect("a content security policy is set")
            .to_string();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "the CSP has `{directive}`: {csp}");
        }
        for loophole in ["unsafe-eval", "unsafe-inline", "*"] {
            assert!(
                !csp.contains(loophole),
                "the CSP allows no `{loophole}`: {csp}"
            );
        }
    }

    #[test]
    fn the_bundle_targets_are_listed_never_all() {
        let config: serde_json::Value =
            serde_json::from_str(CONFIG_JSON).expect("tauri.conf.json is JSON");
        let targets: Vec<&str> = config["bundle"]["targets"]
            .as_array()
            .expect("bundle.targets is an explicit list, not \"all\"")
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        for expected in ["deb", "rpm", "appimage", "msi", "nsis", "dmg"] {
            assert!(
                targets.contains(&expected),
                "bundle.targets configures {expected}: {targets:?}"
            );
        }
        assert!(
            !targets.contains(&"all"),
            "\"all\" would try AppImage downloads in CI"
        );
    }

    #[test]
    fn the_capabilities_grant_our_commands_only() {
        let capability: serde_json::Value =
            serde_json::from_str(include_str!("../capabilities/default.json"))
                .expect("capability is JSON");
        assert_eq!(
            capability["windows"],
            serde_json::json!([MAIN_WINDOW]),
            "the main window only"
        );
        let permissions: Vec<&str> = capability["permissions"]
            .as_array()
            .expect("permissions is a list")
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        let handlers = include_str!("lib.rs");
        for permission in &permissions {
            let command = permission
                .strip_prefix("allow-")
                .unwrap_or_else(|| panic!("only allow-<our command> permissions: {permission}"))
                .replace('-', "_");
            assert!(
                handlers.contains(&format!("commands::{command},")),
                "{permission} names one of our registered commands"
            );
        }
        assert_eq!(
            permissions.len(),
            12,
            "one permission per command: {permissions:?}"
        );
    }
}

#[cfg(test)]
mod ipc_tests {
    use std::sync::Arc;

    use companion_client::clock::SystemClock;
    use companion_client::config::ConfigSources;
    use companion_client::store::MemoryStore;
    use tauri::ipc::{CallbackFn, InvokeBody};
    use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
    use tauri::webview::InvokeRequest;
    use tauri::{WebviewUrl, WebviewWindowBuilder};

    use super::*;

    fn app_with(env: Vec<(&str, &str)>) -> (App<MockRuntime>, tauri::WebviewWindow<MockRuntime>) {
        let env = env
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let state = AppState::load(
            &ConfigSources::env_only(env),
            Arc::new(MemoryStore::new()),
            Arc::new(SystemClock),
        );
        let app = run_app(mock_builder(), tauri::generate_context!(), state)
            .expect("the app builds on the mock runtime");
        let window = WebviewWindowBuilder::new(&app, MAIN_WINDOW, WebviewUrl::default())
            .build()
            .expect("the mock main window");
        (app, window)
    }

    fn invoke(
        window: &tauri::WebviewWindow<MockRuntime>,
        cmd: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, serde_json::Value> {
        get_ipc_response(
            window,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().expect("a URL"),
                body: InvokeBody::Json(body),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_owned(),
            },
        )
        .map(|body| {
            body.deserialize::<serde_json::Value>()
                .expect("JSON answer")
        })
    }

    const CONFIGURED: [(&str, &str); 3] = [
        ("COMPANION_AUTH0_URL", "http://127.0.0.1:9/"),
        ("COMPANION_CLIENT_ID", "desktop-client"),
        ("COMPANION_PROXY_URL", "http://127.0.0.1:9/"),
    ];

    #[test]
    fn an_incomplete_configuration_answers_not_configured_with_the_reason() {
        let (_app, window) = app_with(Vec::new());
        let error = invoke(&window, "status", serde_json::json!({})).expect_err("status fails");
        assert_eq!(error["code"], "not_configured", "code: {error}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("COMPANION_")),
            "the message says how to configure: {error}"
        );
        let config = invoke(&window, "config", serde_json::json!({})).expect("config answers");
        assert!(
            config["problem"].is_string(),
            "the config view carries the problem: {config}"
        );
    }

    #[test]
    fn without_a_session_status_says_signed_out_and_list_asks_to_sign_in() {
        let mut env = CONFIGURED.to_vec();
        env.push(("COMPANION_AUDIENCE", "https://companion.example/api"));
        let (_app, window) = app_with(env);
        let status = invoke(&window, "status", serde_json::json!({})).expect("status answers");
        assert_eq!(
            status["signed_in"], false,
            "no session in a fresh store: {status}"
        );
        let error =
            invoke(&window, "list", serde_json::json!({})).expect_err("list needs a session");
        assert_eq!(error["code"], "signed_out", "code: {error}");
    }

    #[test]
    fn managed_keys_are_reported_locked_with_the_support_link() {
        let managed = std::env::temp_dir().join(format!(
            "passkey-companion-managed-{}.toml",
            std::process::id()
        ));
        std::fs::write(
            &managed,
            "support_url = \"https://help.example.com/passkeys\"\nenrollment_types = [\"webauthn-roaming\"]\n",
        )
        .expect("write the managed file");
        let env = CONFIGURED
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain([(
                "COMPANION_SUPPORT_URL".to_owned(),
                "https://ignored.example.com".to_owned(),
            )])
            .collect();
        let sources = ConfigSources {
            user_file: None,
            managed: companion_client::config::ManagedSource::TomlFile(managed.clone()),
            env,
        };
        let state = AppState::load(
            &sources,
            Arc::new(MemoryStore::new()),
            Arc::new(SystemClock),
        );
        let _ = std::fs::remove_file(&managed);
        let app = run_app(mock_builder(), tauri::generate_context!(), state).expect("app");
        let window = WebviewWindowBuilder::new(&app, MAIN_WINDOW, WebviewUrl::default())
            .build()
            .expect("window");
        let config = invoke(&window, "config", serde_json::json!({})).expect("config answers");
        assert_eq!(
            config["support_url"], "https://help.example.com/passkeys",
            "the managed support link wins over the environment: {config}"
        );
        assert_eq!(
            config["enrollment_types"],
            serde_json::json!(["webauthn-roaming"]),
            "only what the organization offers: {config}"
        );
        let entries = config["entries"].as_array().expect("entries");
        let locked: Vec<&str> = entries
            .iter()
            .filter(|e| e["locked"] == true)
            .filter_map(|e| e["key"].as_str())
            .collect();
        assert_eq!(
            locked,
            ["enrollment_types", "support_url"],
            "managed keys are locked: {config}"
        );
        assert!(
            config["problem"].is_null(),
            "a complete configuration: {config}"
        );
    }

    #[test]
    fn a_name_is_validated_before_any_network_call() {
        let mut env = CONFIGURED.to_vec();
        env.push(("COMPANION_AUDIENCE", "https://companion.example/api"));
        let (_app, window) = app_with(env);
        let error = invoke(
            &window,
            "rename",
            serde_json::json!({"id": "webauthn-roaming|dev_x", "name": "a name far longer than twenty"}),
        )
        .expect_err("too long");
        assert_eq!(error["code"], "invalid_name", "code: {error}");
        let error = invoke(&window, "enroll", serde_json::json!({"kind": "sms"}))
            .expect_err("only webauthn kinds");
        assert!(
            error.is_string() || error["code"].is_string(),
            "refused: {error}"
        );
        assert_eq!(
            invoke(&window, "cancel_enroll", serde_json::json!({})).expect("answers"),
            false,
            "nothing to cancel"
        );
    }
}
