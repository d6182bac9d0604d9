//! [`AppState`]: what the commands share, managed by Tauri — the configuration as loaded, the `Companion` built
//! from it (when valid), the browser launcher, and the cancel handles of the browser round trips in progress.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use companion_client::Companion;
use companion_client::browser::{BrowserLauncher, launcher_for};
use companion_client::clock::Clock;
use companion_client::config::{ConfigError, ConfigSources, EffectiveConfig};
use companion_client::store::TokenStore;
use tokio_util::sync::CancellationToken;

use crate::error::{CommandError, ErrorCode};

/// The shared state of the commands.
pub struct AppState {
    config: Result<EffectiveConfig, ConfigError>,
    companion: Result<Arc<Companion>, CommandError>,
    launcher: Arc<dyn BrowserLauncher>,
    sign_in: Mutex<Option<CancellationToken>>,
    enroll: Mutex<Option<CancellationToken>>,
    log_file: Mutex<Option<PathBuf>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("configured", &self.companion.is_ok())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Loads the configuration from `sources` and, when it is valid, builds the companion over `store` and `clock`.
    /// An invalid configuration is kept: every command then answers `not_configured` with the reason.
    pub fn load(
        sources: &ConfigSources,
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let config = sources.load();
        let companion = match &config {
            Ok(effective) => effective
                .validate()
                .map_err(|error| CommandError::from(&error))
                .and_then(|client| Companion::new(client, store, clock).map_err(CommandError::from))
                .map(Arc::new),
            Err(error) => Err(CommandError::from(error)),
        };
        let browser = match &companion {
            Ok(companion) => companion.session().config().browser.clone(),
            Err(_) => None,
        };
        if let Err(error) = &companion {
            tracing::warn!(message = %error.message, "the app is not configured");
        }
        Self {
            config,
            companion,
            launcher: Arc::from(launcher_for(browser.as_ref())),
            sign_in: Mutex::new(None),
            enroll: Mutex::new(None),
            log_file: Mutex::new(None),
        }
    }

    /// The session's first check (keyring read, discovery, refresh with rotation, identity) as a future to run
    /// while the window is being created. The UI's `status` then finds the access token and identity in memory;
    /// if it asks while the check is still running it waits on the session's lock and reuses the result, so the
    /// refresh token is never used twice. Failures are left for that `status` to report. `None` when the app is
    /// not configured.
    pub fn warm_up(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let companion = self.companion.as_ref().ok()?.clone();
        Some(async move {
            if let Err(error) = companion.session().status().await {
                tracing::info!(%error, "the session could not be checked at start-up");
            }
        })
    }

    /// Replaces the browser launcher (tests drive the URLs themselves).
    #[must_use]
    pub fn with_launcher(mut self, launcher: Arc<dyn BrowserLauncher>) -> Self {
        self.launcher = launcher;
        self
    }

    /// The companion, or `not_configured`.
    ///
    /// # Errors
    /// The configuration problem, as `not_configured`.
    pub fn companion(&self) -> Result<Arc<Companion>, CommandError> {
        self.companion.clone()
    }

    /// The configuration as loaded.
    pub fn config(&self) -> &Result<EffectiveConfig, ConfigError> {
        &self.config
    }

    /// The browser launcher.
    pub fn launcher(&self) -> Arc<dyn BrowserLauncher> {
        self.launcher.clone()
    }

    /// Where the log file is, once logging started.
    pub fn log_file(&self) -> Option<PathBuf> {
        self.log_file.lock().ok().and_then(|path| path.clone())
    }

    /// Records where the log file is.
    pub fn set_log_file(&self, path: PathBuf) {
        if let Ok(mut slot) = self.log_file.lock() {
            *slot = Some(path);
        }
    }

    /// Starts a sign-in round trip: a fresh cancel handle, or `in_progress` when one is already waiting.
    ///
    /// # Errors
    /// `in_progress`.
    pub fn begin_sign_in(&self) -> Result<Round<'_>, CommandError> {
        Round::begin(
            &self.sign_in,
            "a sign-in is already waiting for your browser",
        )
    }

    /// Cancels the sign-in in progress, if any; returns whether there was one.
    pub fn cancel_sign_in(&self) -> bool {
        Round::cancel(&self.sign_in)
    }

    /// Starts an enrollment round trip (see [`AppState::begin_sign_in`]).
    ///
    /// # Errors
    /// `in_progress`.
    pub fn begin_enroll(&self) -> Result<Round<'_>, CommandError> {
        Round::begin(
            &self.enroll,
            "another method is already being added in your browser",
        )
    }

    /// Cancels the enrollment in progress, if any; returns whether there was one.
    pub fn cancel_enroll(&self) -> bool {
        Round::cancel(&self.enroll)
    }
}

/// A browser round trip in progress; dropping it clears the slot so the next one can start.
#[derive(Debug)]
pub struct Round<'a> {
    slot: &'a Mutex<Option<CancellationToken>>,
    token: CancellationToken,
}

impl<'a> Round<'a> {
    fn begin(slot: &'a Mutex<Option<CancellationToken>>, busy: &str) -> Result<Self, CommandError> {
        let mut current = slot
            .lock()
            .map_err(|_| CommandError::new(ErrorCode::Failed, "internal state is unavailable"))?;
        if current.as_ref().is_some_and(|token| !token.is_cancelled()) {
            return Err(CommandError::new(ErrorCode::InProgress, busy));
        }
        let token = CancellationToken::new();
        *current = Some(token.clone());
        Ok(Self { slot, token })
    }

    fn cancel(slot: &Mutex<Option<CancellationToken>>) -> bool {
        match slot.lock().ok().and_then(|mut current| current.take()) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// The cancel handle of this round trip.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }
}

impl Drop for Round<'_> {
    fn drop(&mut self) {
        if let Ok(mut current) = self.slot.lock()
            && current.as_ref().is_some_and(|token| token == &self.token)
        {
            current.take();
        }
    }
}
