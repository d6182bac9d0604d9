//! Project automation for Passkey Companion: `cargo xtask setup`, `test` (alias `ci`) and `demo`.
//!
//! Run through the cargo alias in `.cargo/config.toml`. Errors print with their causes (`{:#}`) and exit 2.

mod aaguids;
mod bench;
mod bench_app;
mod bundle;
mod ci;
mod demo;
mod setup;
#[cfg(test)]
mod tidy;

use clap::{Parser, Subcommand};

/// Project automation for Passkey Companion.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "Project automation for Passkey Companion"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

/// The tasks.
#[derive(Debug, Subcommand)]
enum Task {
    /// Install the missing Debian packages and cargo tools (quiet when all are present).
    Setup,
    /// Install what is missing, then run fmt, clippy and every test, as CI does.
    Test(TestArgs),
    /// The same as `test`: exactly what CI runs.
    Ci(TestArgs),
    /// Build and run the demo: dev tenant provisioned by companion-admin, proxy, and the app (with a display).
    Demo {
        /// Port of the dev tenant on 127.0.0.1 (its base URL is http://localhost:<port>).
        #[arg(long, default_value_t = demo::DEFAULT_PORT)]
        port: u16,
        /// Port of the proxy on 127.0.0.1.
        #[arg(long, default_value_t = demo::DEFAULT_PROXY_PORT)]
        proxy_port: u16,
        /// Do not start the desktop app even when a display is available.
        #[arg(long)]
        no_app: bool,
    },
    /// Load-test on loopback and print a table (see docs/benchmarks.md); no suite runs them all.
    Bench {
        /// The bench to run.
        suite: Option<bench::Suite>,
    },
    /// Build the .deb and .rpm with the Tauri bundler (release build) and check the .deb's contents.
    Bundle {
        /// Instead: package the existing debug build as a .deb and check it, as `cargo xtask test` does.
        #[arg(long)]
        debug: bool,
    },
    /// Convert the community passkey AAGUID list into the proxy's bundled snapshot (crates/proxy/data/).
    Aaguids(aaguids::Args),
}

/// Arguments of `test` and `ci`.
#[derive(Debug, clap::Args)]
struct TestArgs {
    /// Internal: run only the test step; `xtask test` re-runs itself this way inside a D-Bus session and Xvfb.
    #[arg(long, hide = true)]
    inner: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup => setup::run(),
        Task::Test(args) | Task::Ci(args) => ci::test(args.inner),
        Task::Demo {
            port,
            proxy_port,
            no_app,
        } => demo::run(demo::Options {
            port,
            proxy_port,
            no_app,
        }),
        Task::Bench { suite } => bench::run(suite),
        Task::Bundle { debug: false } => bundle::run(),
        Task::Bundle { debug: true } => bundle::check_debug_deb(),
        Task::Aaguids(args) => aaguids::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
