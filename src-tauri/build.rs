//! Build script: lets `tauri-build` read `tauri.conf.json` and the capabilities and generate the app context.
//!
//! The app manifest lists our commands, so Tauri generates an `allow-<command>` permission for each and only the
//! ones a capability names can be invoked from the webview.

/// Every command the UI may invoke; `capabilities/default.json` grants exactly these.
const COMMANDS: &[&str] = &[
    "status",
    "sign_in",
    "cancel_sign_in",
    "step_up",
    "list",
    "rename",
    "remove",
    "enroll",
    "cancel_enroll",
    "sign_out",
    "config",
    "export_logs",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .unwrap_or_else(|error| panic!("tauri-build failed: {error:#}"));
}
