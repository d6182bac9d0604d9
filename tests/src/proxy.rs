//! The proxy in-process for end-to-end tests, on a clock the test can move forward (to make a recent MFA look
//! old without waiting).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::tenant::{E2eTenant, PROXY_CLIENT_ID, PROXY_CLIENT_SECRET};

/// The proxy's clock: real time plus an offset the test sets, to make a recent MFA look old.
#[derive(Debug, Clone, Default)]
pub struct ProxyClock(Arc<AtomicI64>);

impl ProxyClock {
    /// From now on the clock reads real time plus `by` ([`Duration::ZERO`] puts it back).
    pub fn skew(&self, by: Duration) {
        self.0.store(
            i64::try_from(by.as_secs()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }
}

impl companion_proxy::Clock for ProxyClock {
    fn now_utc(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc() + time::Duration::seconds(self.0.load(Ordering::SeqCst))
    }
}

/// Starts the proxy in-process against `tenant` on `clock`, on port 0, warmed up, and returns its URL.
///
/// # Errors
/// When the settings are refused or no loopback port can be bound.
pub async fn start_proxy(tenant: &E2eTenant, clock: ProxyClock) -> anyhow::Result<String> {
    let settings = companion_proxy::config::Settings::for_test(
        tenant.base_url(),
        PROXY_CLIENT_ID,
        PROXY_CLIENT_SECRET,
    )?;
    let state = companion_proxy::AppState::new(settings, Arc::new(clock))?;
    state.warm_up().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(companion_proxy::serve(
        listener,
        state,
        std::future::pending(),
    ));
    Ok(url)
}
