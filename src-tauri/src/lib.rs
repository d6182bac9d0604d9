//! Passkey Companion desktop app: the Tauri v2 shell around `companion-client`.
//!
//! The shell stays thin: it creates the window that shows the static `ui/` and (in later work) exposes
//! commands that parse input, call `companion-client` and map its errors. Sign-in and every WebAuthn ceremony
//! run in the system browser, never in this webview, and no token ever crosses into it.
//!
//! [`run_app`] is generic over the Tauri [`Runtime`] so tests build the same app on the mock runtime.

use tauri::{App, Builder, Context, Runtime};

/// The label of the app's only window, as declared in `tauri.conf.json` and the capabilities.
pub const MAIN_WINDOW: &str = "main";

/// Builds the application on any runtime: the real one in [`run`], the mock one in tests.
///
/// # Errors
/// When Tauri cannot set up the app or create its main window (for example, no display).
pub fn run_app<R: Runtime>(builder: Builder<R>, context: Context<R>) -> tauri::Result<App<R>> {
    builder.build(context)
}

/// Runs the desktop app on the system webview until its last window closes.
///
/// Returns a failure exit code, after printing why, when the app cannot start.
pub fn run() -> std::process::ExitCode {
    match run_app(Builder::default(), tauri::generate_context!()) {
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

    /// The configuration file, as the bundler reads it (the generated context trims the bundle section).
    const CONFIG_JSON: &str = include_str!("../tauri.conf.json");

    #[test]
    fn the_app_starts_with_its_main_window_on_the_mock_runtime() {
        let app = run_app(tauri::test::mock_builder(), tauri::generate_context!())
            .expect("the app builds from tauri.conf.json");

        let config = app.config();
        assert_eq!(
            config.product_name.as_deref(),
            Some("Passkey Companion"),
            "product name"
        );
        assert_eq!(
            config.identifier, "dev.passkey-companion.app",
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
    fn the_capabilities_grant_core_defaults_only() {
        let capability: serde_json::Value =
            serde_json::from_str(include_str!("../capabilities/default.json"))
                .expect("capability is JSON");
        assert_eq!(
            capability["windows"],
            serde_json::json!([MAIN_WINDOW]),
            "the main window only"
        );
        assert_eq!(
            capability["permissions"],
            serde_json::json!(["core:default"]),
            "no shell, file system or other plugin permissions"
        );
    }
}
