//! `companion-proxy`: loads the configuration, starts logging, warms the caches and serves until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use companion_mgmt::SystemClock;
use companion_proxy::config::Config;
use companion_proxy::{AppState, serve, telemetry};

fn main() -> ExitCode {
    let settings = match Config::load().and_then(Config::validate) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("companion-proxy: {:#}", anyhow::Error::new(error));
            return ExitCode::from(2);
        }
    };
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| telemetry::DEFAULT_FILTER.to_owned());
    let subscriber = telemetry::subscriber(settings.log_format, std::io::stdout, &filter);
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        eprintln!("companion-proxy: a global logger was already set");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.worker_threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("companion-proxy: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "companion-proxy failed");
            eprintln!("companion-proxy: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(settings: companion_proxy::config::Settings) -> anyhow::Result<()> {
    let listen = settings.listen;
    let state = AppState::new(settings, Arc::new(SystemClock)).context("setting up the proxy")?;
    state.warm_up().await;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%local, issuer = %state.settings.issuer.0, "companion-proxy listening");
    serve(listener, state, shutdown_signal())
        .await
        .context("serving")?;
    tracing::info!("companion-proxy stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down; draining in-flight requests");
}
