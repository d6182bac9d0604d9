//! Command-line arguments.

use clap::{Parser, Subcommand, ValueEnum};

/// Manage the passkeys and other sign-in methods of your account.
///
/// Configuration comes from the built-in defaults, your file ($XDG_CONFIG_HOME/passkey-companion/config.toml),
/// your organization's managed settings (/etc/passkey-companion/config.toml; locked: neither your file nor the
/// environment can change them), then COMPANION_* environment variables (COMPANION_AUTH0_URL, COMPANION_CLIENT_ID,
/// COMPANION_AUDIENCE, COMPANION_PROXY_URL, COMPANION_REDIRECT_PORTS, COMPANION_BROWSER, ...); `passkeys config`
/// shows the result and which layer set each key. For development, demos and tests only, COMPANION_MANAGED_CONFIG
/// names a TOML file read as the managed settings (locked the same way) while this computer has none of its own;
/// on a managed install the fixed location always wins. COMPANION_BROWSER (or `browser`) is a command that receives the
/// URL as its last argument; without it the system browser opens. The session's refresh token is kept in the
/// system keyring only.
///
/// Exit codes: 0 success, 1 failure (not signed in, refused, not found, cancelled), 2 usage or configuration error.
#[derive(Debug, Parser)]
#[command(name = "passkeys", version)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Sign in with your browser.
    Login {
        /// Prove a fresh multi-factor authentication now (step-up).
        #[arg(long)]
        step_up: bool,
        /// Seconds to wait for the browser.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Show whether you are signed in, and as whom. Exits 1 when signed out.
    Status {
        /// Machine-readable output: {"signed_in": ..., "sub": ..., ...}.
        #[arg(long)]
        json: bool,
    },
    /// List your sign-in methods.
    List {
        /// Print the proxy's {"authenticators": [...]} unchanged.
        #[arg(long)]
        json: bool,
    },
    /// Add this computer (platform) or a security key (roaming), finishing in your browser.
    Enroll {
        /// What to add.
        kind: EnrollKind,
        /// Seconds to wait for the new method to appear.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Print the new method as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rename a method (1 to 20 characters).
    Rename {
        /// The method's id, as `list` shows it.
        id: String,
        /// The new name.
        name: String,
        /// Print the renamed method as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a method; asks for a fresh MFA in the browser when needed.
    Remove {
        /// The method's id, as `list` shows it.
        id: String,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Sign out: revoke the session and remove it from the keyring.
    Logout,
    /// Show the effective configuration and which layer set each key.
    Config {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// Kinds of authenticator to add.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum EnrollKind {
    /// This computer's biometrics (Touch ID, Windows Hello): `webauthn-platform`.
    Platform,
    /// A security key: `webauthn-roaming`.
    Roaming,
}
