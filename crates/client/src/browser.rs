//! Opening URLs in the system browser: the configured `browser` command (`COMPANION_BROWSER`), which receives the
//! URL as its last argument, else the platform default through the `open` crate.

use std::process::{Command, Stdio};

use url::Url;

use crate::config::BrowserCommand;

/// Why the browser could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// The configured command could not be started.
    #[error("cannot start the browser command `{program}`")]
    Command {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The system default browser could not be opened.
    #[error("cannot open the system browser")]
    System(#[source] std::io::Error),
    /// A test's scripted browser failed.
    #[error("the browser failed: {0}")]
    Other(String),
}

/// Opens a URL for the user. Tests pass a closure that drives the URL themselves.
pub trait BrowserLauncher: Send + Sync {
    /// Opens `url`; returns once the browser was started (not when the user is done).
    ///
    /// # Errors
    /// [`LaunchError`].
    fn open(&self, url: &Url) -> Result<(), LaunchError>;
}

impl<F> BrowserLauncher for F
where
    F: Fn(&Url) -> Result<(), LaunchError> + Send + Sync,
{
    fn open(&self, url: &Url) -> Result<(), LaunchError> {
        self(url)
    }
}

/// Runs a configured command with the URL as last argument; the browser keeps running after we return.
#[derive(Debug, Clone)]
pub struct CommandLauncher {
    command: BrowserCommand,
}

impl CommandLauncher {
    /// A launcher for `command`.
    pub fn new(command: BrowserCommand) -> Self {
        Self { command }
    }
}

impl BrowserLauncher for CommandLauncher {
    fn open(&self, url: &Url) -> Result<(), LaunchError> {
        let mut child = Command::new(&self.command.program)
            .args(&self.command.args)
            .arg(url.as_str())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| LaunchError::Command {
                program: self.command.program.clone(),
                source,
            })?;
        // Reap the browser when it exits so it does not linger as a zombie; we never wait for it.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(())
    }
}

/// The platform's default browser (`xdg-open`, `open`, `start`) through the `open` crate.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLauncher;

impl BrowserLauncher for SystemLauncher {
    fn open(&self, url: &Url) -> Result<(), LaunchError> {
        open::that_detached(url.as_str()).map_err(LaunchError::System)
    }
}

/// The launcher the configuration asks for: the `browser` command if set, else the system default.
pub fn launcher_for(browser: Option<&BrowserCommand>) -> Box<dyn BrowserLauncher> {
    match browser {
        Some(command) => Box::new(CommandLauncher::new(command.clone())),
        None => Box::new(SystemLauncher),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_gets_the_url_as_last_argument() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("url");
        // `sh -c SCRIPT OUT URL`: the script sees OUT as `$0` and the appended URL as `$1`.
        let command = BrowserCommand {
            program: "sh".to_owned(),
            args: vec![
                "-c".to_owned(),
                "printf '%s' \"$1\" > \"$0\"".to_owned(),
                out.display().to_string(),
            ],
        };
        let url = Url::parse("http://127.0.0.1:1/authorize?x=1&y=2").unwrap();
        CommandLauncher::new(command).open(&url).unwrap();
        // The browser runs detached; wait for it to write.
        let mut written = String::new();
        for _ in 0..100 {
            written = std::fs::read_to_string(&out).unwrap_or_default();
            if !written.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(written, url.as_str());
    }

    #[test]
    fn a_missing_program_is_a_typed_error() {
        let command = BrowserCommand::parse("/nonexistent/browser --flag").unwrap();
        let result =
            CommandLauncher::new(command).open(&Url::parse("https://example.com").unwrap());
        assert!(
            matches!(&result, Err(LaunchError::Command { program, .. }) if program == "/nonexistent/browser"),
            "{result:?}"
        );
    }
}
