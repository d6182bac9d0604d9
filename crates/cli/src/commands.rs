//! The commands: each parses nothing itself, calls `companion-client`, and prints.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use companion_client::browser::{BrowserLauncher, LaunchError, launcher_for};
use companion_client::clock::SystemClock;
use companion_client::config::{ConfigSources, EffectiveConfig, MANAGED_CONFIG_ENV};
use companion_client::oidc::SignInOptions;
use companion_client::proxy::ProxyError;
use companion_client::session::Persistence;
use companion_client::store::KeyringStore;
use companion_client::{Companion, EnrollError, EnrollOptions};
use companion_protocol::api::{Authenticator, EnrollmentType};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::args::{Cli, Command, EnrollKind};

/// Success.
pub(crate) const EXIT_OK: u8 = 0;
/// A user-facing failure: not signed in, refused, not found, cancelled, ...
pub(crate) const EXIT_FAILURE: u8 = 1;
/// A usage or configuration error.
pub(crate) const EXIT_USAGE: u8 = 2;

/// Why a managed-config override was not used.
const OVERRIDE_IGNORED: &str = "this computer has managed settings of its own, \
                                and those always win over the development override";

/// An error with its exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The exit code.
    pub(crate) code: u8,
    /// What went wrong.
    pub(crate) error: anyhow::Error,
}

fn user(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_FAILURE,
        error: error.into(),
    }
}

fn usage(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_USAGE,
        error: error.into(),
    }
}

/// Prints the URL (in case no browser opens), then opens it; a failed launch is a warning, not an error: the
/// user can still open the printed URL.
struct Announcing(Box<dyn BrowserLauncher>);

impl BrowserLauncher for Announcing {
    fn open(&self, url: &Url) -> Result<(), LaunchError> {
        eprintln!("Opening your browser. If it does not open, visit:\n  {url}");
        if let Err(error) = self.0.open(url) {
            eprintln!("warning: {error:#}");
        }
        Ok(())
    }
}

/// Runs a command and returns its exit code.
pub(crate) async fn run(cli: Cli) -> Result<u8, Failure> {
    let sources = ConfigSources::system();
    let effective = sources
        .load()
        .context("invalid configuration")
        .map_err(usage)?;
    if let Command::Config { json } = cli.command {
        return show_config(&effective, &sources, json);
    }
    for key in effective.ignored_env() {
        eprintln!(
            "passkeys: {} is ignored: `{key}` is managed by your organization",
            key.env_var()
        );
    }
    if let Some(file) = &effective.managed().ignored_override {
        eprintln!("passkeys: {MANAGED_CONFIG_ENV}={file} is ignored: {OVERRIDE_IGNORED}");
    }
    let config = effective
        .validate()
        .context("incomplete configuration (see `passkeys config`)")
        .map_err(usage)?;
    let launcher = Announcing(launcher_for(config.browser.as_ref()));
    let companion = Companion::new(config, Arc::new(KeyringStore::new()), Arc::new(SystemClock))
        .map_err(usage)?;
    let cancel = CancellationToken::new();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    let app = App {
        companion,
        launcher,
        cancel,
    };
    match cli.command {
        Command::Login { step_up, timeout } => app.login(step_up, timeout).await,
        Command::Status { json } => app.status(json).await,
        Command::List { json } => app.list(json).await,
        Command::Enroll {
            kind,
            timeout,
            json,
        } => app.enroll(kind, timeout, json).await,
        Command::Rename { id, name, json } => app.rename(&id, &name, json).await,
        Command::Remove { id, yes } => app.remove(&id, yes).await,
        Command::Logout => app.logout().await,
        Command::Config { .. } => Ok(EXIT_OK),
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(user)?;
    println!("{text}");
    Ok(())
}

fn show_config(
    effective: &EffectiveConfig,
    sources: &ConfigSources,
    json: bool,
) -> Result<u8, Failure> {
    let entries = effective.entries();
    let problem = effective.validate().err().map(|e| e.to_string());
    if json {
        print_json(&serde_json::json!({
            "entries": entries,
            "ignored_env": effective.ignored_env().iter().map(|k| k.env_var()).collect::<Vec<_>>(),
            "user_file": sources.user_file.as_ref().map(|p| p.display().to_string()),
            "managed": effective.managed(),
            "valid": problem.is_none(),
            "problem": problem,
        }))?;
    } else {
        if let Some(path) = &sources.user_file {
            println!("user file: {}", path.display());
        }
        let managed = effective.managed();
        if let Some(location) = &managed.location {
            let how = if managed.dev_override {
                format!(" (from {MANAGED_CONFIG_ENV}: a development override)")
            } else {
                String::new()
            };
            println!("managed settings: {location}{how}");
        }
        if let Some(file) = &managed.ignored_override {
            println!("note: {MANAGED_CONFIG_ENV}={file} is ignored: {OVERRIDE_IGNORED}");
        }
        for entry in &entries {
            let value = entry.value.as_deref().unwrap_or("(not set)");
            let layer = entry
                .layer
                .map_or_else(|| "-".to_owned(), |layer| layer.to_string());
            let lock = if entry.locked { " [locked]" } else { "" };
            println!("{:<17} {value}  ({layer}){lock}", entry.key);
        }
        for key in effective.ignored_env() {
            println!(
                "note: {} is ignored: `{key}` is managed by your organization",
                key.env_var()
            );
        }
        if let Some(problem) = &problem {
            println!("problem: {problem}");
        }
    }
    Ok(if problem.is_some() {
        EXIT_USAGE
    } else {
        EXIT_OK
    })
}

struct App {
    companion: Companion,
    launcher: Announcing,
    cancel: CancellationToken,
}

impl App {
    fn sign_in_options(&self, step_up: bool, timeout: u64) -> SignInOptions {
        SignInOptions {
            step_up,
            timeout: Duration::from_secs(timeout),
            cancel: self.cancel.clone(),
        }
    }

    async fn sign_in(&self, step_up: bool, timeout: u64) -> Result<(), Failure> {
        let signed_in = self
            .companion
            .session()
            .sign_in(&self.launcher, &self.sign_in_options(step_up, timeout))
            .await
            .context("sign-in failed")
            .map_err(user)?;
        let who = signed_in
            .identity
            .email
            .clone()
            .or_else(|| signed_in.identity.name.clone())
            .unwrap_or_else(|| signed_in.identity.sub.clone());
        eprintln!("Signed in as {who}.");
        if signed_in.persistence == Persistence::MemoryOnly {
            eprintln!(
                "warning: the system keyring is unavailable or locked, so the session was not saved; \
                 it ends when this command exits. Unlock your keyring and sign in again."
            );
        }
        Ok(())
    }

    async fn step_up(&self) -> Result<(), Failure> {
        eprintln!("This change needs a fresh multi-factor check.");
        self.sign_in(true, 300).await
    }

    async fn login(&self, step_up: bool, timeout: u64) -> Result<u8, Failure> {
        self.sign_in(step_up, timeout).await?;
        Ok(EXIT_OK)
    }

    async fn status(&self, json: bool) -> Result<u8, Failure> {
        let status = self
            .companion
            .session()
            .status()
            .await
            .context("cannot check the session")
            .map_err(user)?;
        if json {
            print_json(&status)?;
        } else if status.signed_in {
            let who = status
                .email
                .as_deref()
                .or(status.name.as_deref())
                .unwrap_or_default();
            println!(
                "Signed in to {} as {who} ({}).",
                status.tenant,
                status.sub.as_deref().unwrap_or_default()
            );
            if status.persistence == Some(Persistence::MemoryOnly) {
                println!("The session is not saved: the system keyring is unavailable.");
            }
        } else {
            println!("Not signed in to {}. Run `passkeys login`.", status.tenant);
            if !status.keyring_available {
                println!(
                    "The system keyring is unavailable or locked, so no saved session can be read."
                );
            }
        }
        Ok(if status.signed_in {
            EXIT_OK
        } else {
            EXIT_FAILURE
        })
    }

    async fn list(&self, json: bool) -> Result<u8, Failure> {
        if json {
            let raw = self.companion.list_raw().await.map_err(proxy_failure)?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(raw.as_bytes()).map_err(user)?;
            if !raw.ends_with('\n') {
                stdout.write_all(b"\n").map_err(user)?;
            }
            return Ok(EXIT_OK);
        }
        let list = self.companion.list().await.map_err(proxy_failure)?;
        if list.authenticators.is_empty() {
            println!("No sign-in methods.");
        }
        for method in &list.authenticators {
            print_method(method);
        }
        Ok(EXIT_OK)
    }

    async fn enroll(&self, kind: EnrollKind, timeout: u64, json: bool) -> Result<u8, Failure> {
        let kind = match kind {
            EnrollKind::Platform => EnrollmentType::WebauthnPlatform,
            EnrollKind::Roaming => EnrollmentType::WebauthnRoaming,
        };
        let options = EnrollOptions {
            timeout: Duration::from_secs(timeout),
            cancel: self.cancel.clone(),
            ..EnrollOptions::default()
        };
        eprintln!("Finish adding the authenticator in your browser; waiting (Ctrl-C to cancel).");
        let added = match self.companion.enroll(kind, &self.launcher, &options).await {
            Err(EnrollError::Proxy(ProxyError::StepUpRequired { .. })) => {
                self.step_up().await?;
                self.companion.enroll(kind, &self.launcher, &options).await
            }
            other => other,
        };
        let added = added.map_err(|error| match error {
            EnrollError::Proxy(error) => proxy_failure(error),
            other => user(other),
        })?;
        if json {
            print_json(&added)?;
        } else {
            println!("Added {} ({}).", added.display_name, added.id);
        }
        Ok(EXIT_OK)
    }

    async fn rename(&self, id: &str, name: &str, json: bool) -> Result<u8, Failure> {
        let renamed = self
            .companion
            .rename(id, name)
            .await
            .map_err(proxy_failure)?;
        if json {
            print_json(&renamed)?;
        } else {
            println!("Renamed {} to \"{}\".", renamed.id, renamed.display_name);
        }
        Ok(EXIT_OK)
    }

    async fn remove(&self, id: &str, yes: bool) -> Result<u8, Failure> {
        let list = self.companion.list().await.map_err(proxy_failure)?;
        let Some(target) = list.authenticators.iter().find(|a| a.id == id) else {
            return Err(user(anyhow!(
                "no sign-in method with id {id}; see `passkeys list`"
            )));
        };
        if !yes {
            if !std::io::stdin().is_terminal() {
                return Err(usage(anyhow!(
                    "refusing to remove without confirmation: pass --yes when not running interactively"
                )));
            }
            eprint!("Remove \"{}\" ({id})? [y/N] ", target.display_name);
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer).map_err(user)?;
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                eprintln!("Nothing removed.");
                return Ok(EXIT_FAILURE);
            }
        }
        let name = target.display_name.clone();
        match self.companion.remove(id).await {
            Err(ProxyError::StepUpRequired { .. }) => {
                self.step_up().await?;
                self.companion.remove(id).await
            }
            other => other,
        }
        .map_err(proxy_failure)?;
        println!("Removed \"{name}\".");
        if let Ok(remaining) = self.companion.list().await {
            if remaining.authenticators.is_empty() {
                println!("You have no other sign-in methods.");
            } else {
                println!("You can still sign in with:");
                for method in &remaining.authenticators {
                    println!("  {} ({})", method.display_name, method.kind);
                }
            }
        }
        println!("Add a replacement with `passkeys enroll roaming` or `passkeys enroll platform`.");
        Ok(EXIT_OK)
    }

    async fn logout(&self) -> Result<u8, Failure> {
        let had_session = self
            .companion
            .session()
            .sign_out()
            .await
            .context("signed out on this computer, but revoking the session at the identity provider failed")
            .map_err(user)?;
        println!(
            "{}",
            if had_session {
                "Signed out."
            } else {
                "Not signed in."
            }
        );
        Ok(EXIT_OK)
    }
}

fn print_method(method: &Authenticator) {
    let last_used = method.last_used_at.as_deref().unwrap_or("never");
    let removable = if method.removable {
        ""
    } else {
        "  (cannot be removed: your last way to sign in)"
    };
    println!(
        "{:<24} {:<18} last used {:<25} {}{removable}",
        method.display_name, method.kind, last_used, method.id
    );
}

fn proxy_failure(error: ProxyError) -> Failure {
    let hint = match &error {
        ProxyError::SignedOut | ProxyError::InvalidToken => Some("run `passkeys login`"),
        ProxyError::LastAuthenticator { .. } => {
            Some("add another method first with `passkeys enroll`")
        }
        ProxyError::StepUpRequired { .. } => Some("run `passkeys login --step-up`, then retry"),
        _ => None,
    };
    user(match hint {
        Some(hint) => anyhow!("{error}; {hint}"),
        None => anyhow::Error::new(error),
    })
}
