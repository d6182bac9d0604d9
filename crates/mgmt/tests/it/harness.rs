//! Starting the dev tenant and building clients for it.

use std::time::Duration;

use companion_devtenant::world::{World, demo};
use companion_devtenant::{RunningTenant, TenantOptions};
use companion_mgmt::{MgmtClient, MgmtConfig, RetryPolicy};
use secrecy::SecretString;
use url::Url;

/// A retry policy fast enough for tests: short backoff, sub-second minimum rate-limit wait, 3 s budget.
pub(crate) fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        rate_limit_budget: Duration::from_secs(3),
        rate_limit_min_wait: Duration::from_millis(100),
        rate_limit_max_wait: Duration::from_secs(3),
        rate_limit_padding_percent: 25,
        max_rate_limit_retries: 5,
    }
}

/// A config for `base` with the demo proxy client and [`fast_policy`].
pub(crate) fn config_for(base: &str) -> MgmtConfig {
    let mut config = MgmtConfig::new(
        Url::parse(base).expect("test base url"),
        demo::PROXY_CLIENT_ID,
        SecretString::from(demo::PROXY_CLIENT_SECRET),
    );
    config.retry = fast_policy();
    config.request_timeout = Duration::from_secs(5);
    config
}

/// A running dev tenant.
pub(crate) struct Tenant {
    pub(crate) running: RunningTenant,
}

impl Tenant {
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A tenant after `edit` adjusted the test options.
    pub(crate) async fn start_with(edit: impl FnOnce(&mut TenantOptions)) -> Self {
        let mut options = TenantOptions::for_test();
        edit(&mut options);
        let running = companion_devtenant::start(options)
            .await
            .expect("dev tenant starts");
        Self { running }
    }

    pub(crate) fn base_url(&self) -> &str {
        self.running.base_url()
    }

    /// A config for this tenant with the demo proxy client.
    pub(crate) fn config(&self) -> MgmtConfig {
        config_for(self.base_url())
    }

    /// A client for this tenant with the demo proxy client.
    pub(crate) fn client(&self) -> MgmtClient {
        MgmtClient::new(self.config()).expect("valid config")
    }

    /// A client after `edit` adjusted the config.
    pub(crate) fn client_with(&self, edit: impl FnOnce(&mut MgmtConfig)) -> MgmtClient {
        let mut config = self.config();
        edit(&mut config);
        MgmtClient::new(config).expect("valid config")
    }
}

/// Alice's seeded method ids, from the demo world itself.
pub(crate) fn alice_method_ids() -> Vec<String> {
    let world = World::demo();
    let alice = world
        .users
        .iter()
        .find(|u| u.user_id == demo::ALICE_USER_ID)
        .expect("alice is in the demo world");
    let mut ids: Vec<String> = alice.methods.iter().map(|m| m.id.clone()).collect();
    ids.sort();
    ids
}
