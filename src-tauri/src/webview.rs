//! Start-up of the app's window: WebKitGTK settings that suit a small static UI (no GPU compositing, except under
//! WebDriver automation, no WebGL, media or page cache: less memory and an earlier first frame), and the "first view painted" report that the UI sends
//! once its first finished view is on screen, logged with the time since the app started (`cargo xtask bench app`
//! times start-up by it).
//!
//! `PASSKEY_COMPANION_DISABLE` (comma-separated `webview-tuning`, `session-prefetch`) turns parts of this off, for
//! troubleshooting rendering and for measuring what each part is worth.

use std::sync::OnceLock;
use std::time::Instant;

/// When [`crate::run`] started (unset in tests that build the app without running it).
static STARTED: OnceLock<Instant> = OnceLock::new();

/// Records the start of the app (the first call wins) and returns it.
pub(crate) fn mark_start() -> Instant {
    *STARTED.get_or_init(Instant::now)
}

/// Milliseconds since [`mark_start`], if it was called.
pub(crate) fn since_start_ms() -> Option<u64> {
    STARTED
        .get()
        .map(|started| u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX))
}

/// The environment variable that turns start-up work off (diagnosis and measurement only).
pub(crate) const DISABLE_ENV: &str = "PASSKEY_COMPANION_DISABLE";

/// The script message handler the UI posts its first painted view to (`window.webkit.messageHandlers.<name>`).
pub(crate) const PAINTED_HANDLER: &str = "companionPainted";

/// The views the UI reports; anything else is logged as `other` (the page never gets to write free text here).
const VIEWS: [&str; 5] = ["list", "list-empty", "list-error", "signed-out", "problem"];

/// Which start-up work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Startup {
    /// WebKitGTK settings for a small static UI.
    pub(crate) webview_tuning: bool,
    /// The session's first check (keyring, refresh) runs while the window is created, not when the UI asks.
    pub(crate) session_prefetch: bool,
}

impl Startup {
    /// Everything on, except what the comma-separated `disabled` list names.
    pub(crate) fn from_disable_list(disabled: Option<&str>) -> Self {
        let disabled: Vec<&str> = disabled
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .collect();
        Self {
            webview_tuning: !disabled.contains(&"webview-tuning"),
            session_prefetch: !disabled.contains(&"session-prefetch"),
        }
    }
}

/// The name logged for a view the UI reported.
pub(crate) fn view_name(message: &str) -> &'static str {
    VIEWS
        .iter()
        .find(|view| **view == message)
        .copied()
        .unwrap_or("other")
}

/// Applies the settings (when `tuning`) and listens for the UI's first painted view, logging it with the time
/// since `started`. Runs on the main thread, right after the webview was created.
#[cfg(target_os = "linux")]
pub(crate) fn set_up(webview: &webkit2gtk::WebView, started: Instant, tuning: bool) {
    use std::cell::Cell;

    use javascriptcore::ValueExt as _;
    use webkit2gtk::{
        CacheModel, HardwareAccelerationPolicy, SettingsExt as _, UserContentManagerExt as _,
        WebContextExt as _, WebViewExt,
    };

    // WebKitWebDriver takes screenshots from the compositor: under automation (the end-to-end tests) the page
    // keeps its compositing, or screenshots never come back.
    let automated = webview.is_controlled_by_automation();
    if tuning {
        if let Some(settings) = WebViewExt::settings(webview) {
            if !automated {
                // No GPU compositing: under software GL it allocates llvmpipe buffers and tiles for a page that
                // never animates in 3D; WebKit then paints into the window's backing store directly.
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
            settings.set_enable_webgl(false);
            settings.set_enable_webaudio(false);
            settings.set_enable_media(false);
            settings.set_enable_page_cache(false);
            settings.set_enable_smooth_scrolling(false);
        }
        if let Some(context) = webview.context() {
            // One local page: no memory or disk caches sized for browsing.
            context.set_cache_model(CacheModel::DocumentViewer);
        }
    }
    let Some(manager) = webview.user_content_manager() else {
        tracing::warn!("the webview has no user content manager: start-up is not reported");
        return;
    };
    let reported = Cell::new(false);
    manager.connect_script_message_received(Some(PAINTED_HANDLER), move |_, result| {
        if reported.replace(true) {
            return;
        }
        let message = result
            .js_value()
            .map(|value| value.to_str().to_string())
            .unwrap_or_default();
        let since_start_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            view = view_name(&message),
            since_start_ms,
            tuning,
            automated,
            "first view painted"
        );
    });
    if !manager.register_script_message_handler(PAINTED_HANDLER) {
        tracing::warn!("cannot register the start-up report handler");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_runs_unless_disabled() {
        let all = Startup {
            webview_tuning: true,
            session_prefetch: true,
        };
        assert_eq!(Startup::from_disable_list(None), all, "unset");
        assert_eq!(Startup::from_disable_list(Some("")), all, "empty");
        assert_eq!(
            Startup::from_disable_list(Some("webview-tuning")),
            Startup {
                webview_tuning: false,
                ..all
            },
            "one"
        );
        assert_eq!(
            Startup::from_disable_list(Some(" session-prefetch , webview-tuning,bogus")),
            Startup {
                webview_tuning: false,
                session_prefetch: false,
            },
            "both, with spaces and an unknown word"
        );
    }

    #[test]
    fn only_known_view_names_are_logged() {
        assert_eq!(view_name("list"), "list", "known");
        assert_eq!(view_name("signed-out"), "signed-out", "known");
        assert_eq!(
            view_name("eyJhbGciOiJSUzI1NiJ9.secret"),
            "other",
            "free text never reaches the log"
        );
    }
}
