//! Structured logs: JSON lines in the platform log folder (`~/.local/share/<identifier>/logs` on Linux), which
//! "Export logs" copies for support. Nothing logged here or in `companion-client` holds a token or secret.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::Mutex;

use tauri::{AppHandle, Manager as _, Runtime};
use tracing_subscriber::EnvFilter;

/// The log file's name inside the platform log folder.
pub(crate) const LOG_FILE: &str = "passkey-companion.jsonl";

/// Starts JSON logging to the platform log folder (level from `COMPANION_LOG`, default `info`) and returns the
/// file's path.
pub(crate) fn init<R: Runtime>(app: &AppHandle<R>) -> Result<PathBuf, String> {
    let folder = app
        .path()
        .app_log_dir()
        .map_err(|error| format!("no log folder: {error}"))?;
    std::fs::create_dir_all(&folder)
        .map_err(|error| format!("cannot create {}: {error}", folder.display()))?;
    let path = folder.join(LOG_FILE);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|error| format!("cannot open {}: {error}", path.display()))?;
    let filter = EnvFilter::try_from_env("COMPANION_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tao=warn,wry=warn"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(Mutex::new(file))
        .try_init()
        .map_err(|error| format!("a logger is already installed: {error}"))?;
    Ok(path)
}
