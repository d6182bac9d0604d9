//! `passkeys`: the command-line twin of the Passkey Companion desktop app.
//!
//! Exit codes: `0` success, `1` a user-facing failure (not signed in, refused, cancelled, not found, ...),
//! `2` a usage or configuration error. Errors go to stderr; `--json` output goes to stdout.

mod args;
mod commands;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PASSKEYS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("passkeys: cannot start: {error}");
            return ExitCode::from(commands::EXIT_FAILURE);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("passkeys: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}
