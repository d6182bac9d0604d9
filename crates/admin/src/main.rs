//! `companion-admin`: provisions an Auth0 tenant for Passkey Companion from a reviewed `tenant.toml`.
//!
//! Exit codes: 0 success (for `plan`: also when changes are pending), 1 failure (the message names the step and
//! Auth0's error), 2 usage error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use companion_admin::{AdminError, ApplyOptions, TenantSpec};
use companion_mgmt::{MgmtClient, MgmtConfig};
use secrecy::SecretString;

/// Passkey Companion tenant provisioning for IT.
#[derive(Debug, Parser)]
#[command(name = "companion-admin", version)]
struct Cli {
    /// The tenant spec.
    #[arg(
        long,
        global = true,
        default_value = "tenant.toml",
        env = "COMPANION_ADMIN_SPEC"
    )]
    spec: PathBuf,
    /// Tenant base URL, e.g. `https://acme.eu.auth0.com`.
    #[arg(long, global = true, env = "COMPANION_AUTH0_URL")]
    auth0_url: Option<url::Url>,
    /// Client id of the admin's own machine-to-machine client.
    #[arg(long, global = true, env = "COMPANION_ADMIN_CLIENT_ID")]
    client_id: Option<String>,
    /// Its secret (prefer `--client-secret-file`).
    #[arg(
        long,
        global = true,
        env = "COMPANION_ADMIN_CLIENT_SECRET",
        hide_env_values = true
    )]
    client_secret: Option<String>,
    /// File holding its secret.
    #[arg(long, global = true, env = "COMPANION_ADMIN_CLIENT_SECRET_FILE")]
    client_secret_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print what `apply` would change (nothing when the tenant matches the spec).
    Plan,
    /// Make the tenant match the spec.
    Apply {
        /// Write the proxy client's secret to this file (mode 0600). Secrets are never printed.
        #[arg(long)]
        secrets_out: Option<PathBuf>,
        /// Seconds to wait for the Action build.
        #[arg(long, default_value_t = 60)]
        build_timeout: u64,
    },
    /// Write the proxy and desktop configurations.
    Export {
        /// Where to write the proxy configuration.
        #[arg(long, default_value = "proxy.toml")]
        proxy_out: PathBuf,
        /// Where to write the desktop managed configuration.
        #[arg(long, default_value = "desktop-config.toml")]
        desktop_out: PathBuf,
    },
}

fn client(cli: &Cli) -> Result<MgmtClient, String> {
    let url = cli
        .auth0_url
        .clone()
        .ok_or("--auth0-url / COMPANION_AUTH0_URL is required")?;
    let id = cli
        .client_id
        .clone()
        .ok_or("--client-id / COMPANION_ADMIN_CLIENT_ID is required")?;
    let secret = match (&cli.client_secret, &cli.client_secret_file) {
        (Some(secret), _) => secret.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the client secret file {}: {e}", path.display()))?
            .trim()
            .to_owned(),
        (None, None) => {
            return Err(
                "--client-secret-file / COMPANION_ADMIN_CLIENT_SECRET_FILE (or COMPANION_ADMIN_CLIENT_SECRET) is required"
                    .to_owned(),
            );
        }
    };
    let mut config = MgmtConfig::new(url, id, SecretString::from(secret));
    config.user_agent = format!("companion-admin/{}", env!("CARGO_PKG_VERSION"));
    MgmtClient::new(config).map_err(|e| format!("invalid configuration: {e}"))
}

fn write(path: &PathBuf, text: &str) -> Result<(), AdminError> {
    std::fs::write(path, text).map_err(|source| AdminError::Write {
        path: path.display().to_string(),
        source,
    })
}

async fn run(cli: Cli) -> Result<(), String> {
    let spec = TenantSpec::from_file(&cli.spec).map_err(|e| e.to_string())?;
    let client = client(&cli)?;
    let describe = |e: AdminError| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    };
    match cli.command {
        Command::Plan => {
            let outcome = companion_admin::plan(&client, &spec)
                .await
                .map_err(describe)?;
            print!("{outcome}");
        }
        Command::Apply {
            secrets_out,
            build_timeout,
        } => {
            let options = ApplyOptions {
                secrets_out,
                build_timeout: Duration::from_secs(build_timeout),
                ..ApplyOptions::default()
            };
            let outcome = companion_admin::apply(&client, &spec, &options)
                .await
                .map_err(describe)?;
            print!("{outcome}");
            if let Some(path) = outcome.secrets_written {
                println!(
                    "Proxy client secret written to {} (mode 0600).",
                    path.display()
                );
            }
        }
        Command::Export {
            proxy_out,
            desktop_out,
        } => {
            let exported = companion_admin::export(&client, &spec)
                .await
                .map_err(describe)?;
            write(&proxy_out, &exported.proxy_toml).map_err(describe)?;
            write(&desktop_out, &exported.desktop_toml).map_err(describe)?;
            println!(
                "Wrote {} and {}.",
                proxy_out.display(),
                desktop_out.display()
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("companion-admin: {message}");
            ExitCode::FAILURE
        }
    }
}
