//! A local Auth0-compatible tenant, so Passkey Companion runs and is tested offline.
//!
//! [`start`] binds a port (0 for an ephemeral one) on 127.0.0.1 and `[::1]` and serves, on the public base URL
//! `http://localhost:<port>`, what Auth0 serves: OIDC discovery and JWKS ([`oidc`]), the hosted login and MFA
//! pages, `/oauth/token` and friends, the Management API subset under `/api/v2/` ([`mgmt`]), enrollment-ticket pages
//! with real WebAuthn registration ([`enroll`], [`webauthn`]), and, behind `--dev-controls`, a fault-injection
//! surface for tests ([`faults`]). Its state comes from a seeded [`world::World`] and lives in a [`store::Store`].

pub mod clock;
pub mod config;
pub mod enroll;
pub mod error;
pub mod faults;
pub mod keys;
pub mod mgmt;
pub mod oidc;
pub mod pages;
pub mod store;
pub mod webauthn;
pub mod world;

use std::net::{Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, RateLimit};
use crate::keys::SigningKeys;
use crate::store::Store;
use crate::world::World;

/// How to start a tenant.
#[derive(Debug, Clone)]
pub struct TenantOptions {
    /// Address to bind on 127.0.0.1 (port 0 for an ephemeral port).
    pub listen: SocketAddr,
    /// The seeded world.
    pub world: World,
    /// Where state persists across restarts, if anywhere.
    pub state_file: Option<PathBuf>,
    /// Whether the `/__dev/` control surface is served.
    pub dev_controls: bool,
    /// Optional token-bucket limit on the Management API.
    pub mgmt_rate_limit: Option<RateLimit>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// RSA key size of the signing keys.
    pub key_bits: usize,
    /// How long a rotated-out signing key stays in the JWKS, in seconds.
    pub key_grace_seconds: i64,
}

impl TenantOptions {
    /// Options for an in-process test: ephemeral port, the demo world, dev controls on, the system clock.
    pub fn for_test() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            world: World::demo(),
            state_file: None,
            dev_controls: true,
            mgmt_rate_limit: None,
            clock: Arc::new(SystemClock),
            key_bits: 2048,
            key_grace_seconds: 24 * 3600,
        }
    }

    /// Options from the binary's configuration.
    ///
    /// # Errors
    /// [`StartError::World`] when the world file cannot be loaded.
    pub fn from_config(config: &Config) -> Result<Self, StartError> {
        let world = match &config.world {
            Some(path) => World::from_file(path)?,
            None => World::demo(),
        };
        Ok(Self {
            listen: config.listen,
            world,
            state_file: config.state_file.clone(),
            dev_controls: config.dev_controls,
            mgmt_rate_limit: config.mgmt_rate_limit,
            ..Self::for_test()
        })
    }
}

/// Why the tenant could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The listen address is taken or not allowed.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The world file is invalid.
    #[error(transparent)]
    World(#[from] world::WorldError),
    /// The state file is invalid.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The signing keys could not be made.
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
}

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Public base URL without a trailing slash, e.g. `http://localhost:8780`.
    pub base_url: Arc<str>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Users, clients, grants, methods, tickets, refresh tokens.
    pub store: Arc<Store>,
    /// Signing keys and JWKS.
    pub keys: Arc<SigningKeys>,
    /// Login transactions, authorization codes and browser sessions.
    pub oidc: Arc<oidc::OidcState>,
    /// Management API rate limiting.
    pub mgmt: Arc<mgmt::MgmtState>,
    /// WebAuthn ceremonies in progress.
    pub webauthn: Arc<webauthn::Ceremonies>,
    /// Injected faults and the Management call log.
    pub faults: Arc<faults::Faults>,
    /// Whether `/__dev/` is served.
    pub dev_controls: bool,
}

impl AppState {
    /// The issuer: the base URL plus `/`, as Auth0 writes it.
    pub fn issuer(&self) -> String {
        format!("{}/", self.base_url)
    }

    /// This tenant's Management API audience, `<base>/api/v2/`.
    pub fn mgmt_audience(&self) -> String {
        format!("{}/api/v2/", self.base_url)
    }
}

/// The tenant's HTTP routes.
pub fn router(state: AppState) -> Router {
    let mut app = Router::new()
        .merge(oidc::routes())
        .merge(mgmt::routes())
        .merge(enroll::routes());
    if state.dev_controls {
        app = app.merge(faults::routes());
    }
    app.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        faults::inject,
    ))
    .layer(tower_http::trace::TraceLayer::new_for_http())
    .layer(
        tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::header::COOKIE,
        ]),
    )
    .with_state(state)
}

/// A running tenant; dropping it does not stop it, [`RunningTenant::shutdown`] does.
#[derive(Debug)]
pub struct RunningTenant {
    /// The bound IPv4 address.
    pub addr: SocketAddr,
    /// The handlers' shared state, for tests that inspect the store or move the clock.
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningTenant {
    /// The public base URL, `http://localhost:<port>`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.state.base_url
    }

    /// The issuer, the base URL plus `/`.
    pub fn issuer(&self) -> String {
        self.state.issuer()
    }

    /// A URL on this tenant.
    ///
    /// # Panics
    /// Never for paths starting with `/`: the base URL is a valid URL.
    pub fn url(&self, path: &str) -> Url {
        #[allow(clippy::expect_used)] // The base URL is built from a bound socket address.
        Url::parse(&format!("{}{path}", self.state.base_url)).expect("base url plus path is a url")
    }

    /// Stops serving and waits for in-flight requests to finish.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Binds and starts a tenant, returning once it accepts connections.
///
/// # Errors
/// [`StartError`] when the port is taken, or the world, state file or keys cannot be set up.
pub async fn start(options: TenantOptions) -> Result<RunningTenant, StartError> {
    let v4 = TcpListener::bind(options.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: options.listen,
            source,
        })?;
    let addr = v4.local_addr().map_err(|source| StartError::Bind {
        addr: options.listen,
        source,
    })?;
    // `localhost` may resolve to ::1 first: answer there too when the machine has IPv6 loopback.
    let v6_addr = SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()));
    let v6 = match TcpListener::bind(v6_addr).await {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::debug!(%error, "not listening on [::1]");
            None
        }
    };
    let base_url: Arc<str> = Arc::from(format!("http://localhost:{}", addr.port()));
    let store = Store::open(&options.world, options.state_file.clone())?;
    let keys = SigningKeys::generate(options.key_bits, options.key_grace_seconds)?;
    let state = AppState {
        webauthn: Arc::new(webauthn::Ceremonies::new(&base_url)),
        base_url,
        clock: options.clock.clone(),
        store: Arc::new(store),
        keys: Arc::new(keys),
        oidc: Arc::new(oidc::OidcState::default()),
        mgmt: Arc::new(mgmt::MgmtState::new(options.mgmt_rate_limit)),
        faults: Arc::new(faults::Faults::default()),
        dev_controls: options.dev_controls,
    };
    let app = router(state.clone());
    let (shutdown, mut watcher) = watch::channel(false);
    let mut tasks = Vec::new();
    for listener in std::iter::once(v4).chain(v6) {
        let app = app.clone();
        let mut watcher = watcher.clone();
        tasks.push(tokio::spawn(async move {
            let stop = async move {
                let _ = watcher.wait_for(|stop| *stop).await;
            };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(%error, "dev tenant server failed");
            }
        }));
    }
    watcher.mark_unchanged();
    tracing::info!(base_url = %state.base_url, "dev tenant listening");
    Ok(RunningTenant {
        addr,
        state,
        shutdown,
        tasks,
    })
}
