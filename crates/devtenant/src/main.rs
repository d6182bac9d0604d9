//! `companion-devtenant`: serves a local Auth0-compatible tenant until interrupted.

use clap::Parser as _;
use companion_devtenant::config::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Config::parse();
    match run(&config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("companion-devtenant: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(config: &Config) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let options = companion_devtenant::TenantOptions::from_config(config)?;
    let tenant = companion_devtenant::start(options)
        .await
        .context("starting the dev tenant")?;
    println!("dev tenant: {}", tenant.base_url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tenant.shutdown().await;
    Ok(())
}
