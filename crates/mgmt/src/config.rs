//! Configuration of a [`MgmtClient`](crate::MgmtClient).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::{Host, Url};

use crate::error::ConfigError;
use crate::retry::RetryPolicy;

/// Default `per_page` of list calls: the Public Cloud maximum.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

/// Everything a [`MgmtClient`](crate::MgmtClient) needs. Build it with [`MgmtConfig::new`] and adjust fields.
///
/// `Debug` output redacts the client secret (it is a [`SecretString`]).
#[derive(Debug, Clone)]
pub struct MgmtConfig {
    /// Tenant base URL, e.g. `https://acme.eu.auth0.com`. Must be `https://`; `http://` is accepted only when the
    /// host is a loopback host (`localhost`, `127.0.0.0/8`, `::1`), which the dev tenant uses.
    pub tenant_url: Url,
    /// Client id of the machine-to-machine application.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: SecretString,
    /// Management API audience; `<tenant_url>/api/v2/` when `None`.
    pub audience: Option<String>,
    /// Timeout for establishing a connection.
    pub connect_timeout: Duration,
    /// Timeout for a whole request, response body included.
    pub request_timeout: Duration,
    /// Extra PEM file of CA certificates trusted in addition to the system's native roots.
    pub extra_ca_file: Option<PathBuf>,
    /// `User-Agent` header of every request.
    pub user_agent: String,
    /// The token is refreshed this long before it expires (capped at a tenth of its lifetime).
    pub token_refresh_slack: Duration,
    /// `per_page` of list calls (1..=100; Auth0's Public Cloud allows at most 50).
    pub page_size: u32,
    /// Retries, backoff and the rate-limit wait budget.
    pub retry: RetryPolicy,
    /// Management API calls in flight at once; more wait their turn. Auth0's rate limits make more pointless,
    /// and it bounds the pooled connections (and their buffers) under load.
    pub max_concurrent_calls: usize,
}

/// Default [`MgmtConfig::max_concurrent_calls`].
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 32;

impl MgmtConfig {
    /// A configuration with defaults: 5 s connect timeout, 10 s request timeout, 60 s refresh slack, 50 per page,
    /// the default [`RetryPolicy`] (3 s rate-limit budget), 32 calls in flight.
    pub fn new(tenant_url: Url, client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self {
            tenant_url,
            client_id: client_id.into(),
            client_secret,
            audience: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            extra_ca_file: None,
            user_agent: format!("companion-mgmt/{}", env!("CARGO_PKG_VERSION")),
            token_refresh_slack: Duration::from_secs(60),
            page_size: DEFAULT_PAGE_SIZE,
            retry: RetryPolicy::default(),
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
        }
    }

    /// Checks the settings and returns the tenant base URL without a trailing slash.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid setting.
    pub fn validate(&self) -> Result<String, ConfigError> {
        let base = validate_tenant_url(&self.tenant_url)?;
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::EmptyClientId);
        }
        if !(1..=100).contains(&self.page_size) {
            return Err(ConfigError::Setting {
                name: "page_size",
                reason: "must be between 1 and 100",
            });
        }
        if self.request_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(ConfigError::Setting {
                name: "timeouts",
                reason: "must be greater than zero",
            });
        }
        if self.max_concurrent_calls == 0 {
            return Err(ConfigError::Setting {
                name: "max_concurrent_calls",
                reason: "must be at least 1",
            });
        }
        if self.retry.max_attempts == 0 {
            return Err(ConfigError::Setting {
                name: "retry.max_attempts",
                reason: "must be at least 1",
            });
        }
        Ok(base)
    }

    /// The audience the token is requested for.
    pub fn effective_audience(&self, base: &str) -> String {
        self.audience
            .clone()
            .unwrap_or_else(|| format!("{base}/api/v2/"))
    }
}

/// Whether `host` is a loopback host: `localhost` (or a name under `.localhost`), `127.0.0.0/8` or `::1`.
pub fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

fn validate_tenant_url(url: &Url) -> Result<String, ConfigError> {
    let reject = |reason| ConfigError::TenantUrl {
        url: if url.username().is_empty() && url.password().is_none() {
            url.to_string()
        } else {
            "<url with user info>".to_owned()
        },
        reason,
    };
    let host = url.host().ok_or_else(|| reject("it has no host"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) => {}
        "http" => return Err(reject("http is allowed only for loopback hosts")),
        _ => return Err(reject("the scheme must be https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(reject("it must not contain user info"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(reject("it must not have a query or fragment"));
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(reject("it must not have a path"));
    }
    let mut base = url.to_string();
    while base.ends_with('/') {
        base.pop();
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn config(url: &str) -> MgmtConfig {
        MgmtConfig::new(
            Url::parse(url).unwrap(),
            "companion-proxy",
            SecretString::from("s3cr3t-value"),
        )
    }

    #[test]
    fn https_and_loopback_http_are_accepted() {
        assert_eq!(
            config("https://acme.eu.auth0.com").validate().unwrap(),
            "https://acme.eu.auth0.com"
        );
        assert_eq!(
            config("https://acme.eu.auth0.com/").validate().unwrap(),
            "https://acme.eu.auth0.com"
        );
        assert_eq!(
            config("http://localhost:8780").validate().unwrap(),
            "http://localhost:8780"
        );
        assert_eq!(
            config("http://127.0.0.1:1").validate().unwrap(),
            "http://127.0.0.1:1"
        );
        assert_eq!(
            config("http://127.8.9.10").validate().unwrap(),
            "http://127.8.9.10"
        );
        assert_eq!(
            config("http://[::1]:9").validate().unwrap(),
            "http://[::1]:9"
        );
        assert_eq!(
            config("http://tenant.localhost:9").validate().unwrap(),
            "http://tenant.localhost:9"
        );
    }

    #[test]
    fn insecure_or_odd_urls_are_refused() {
        for url in [
            "http://acme.eu.auth0.com",
            "http://10.0.0.1",
            "http://localhost.evil.example",
            "ftp://localhost",
            "https://acme.eu.auth0.com/api/v2",
            "https://acme.eu.auth0.com/?x=1",
            "https://acme.eu.auth0.com/#frag",
            "https://user:pw@acme.eu.auth0.com",
        ] {
            let error = config(url).validate().unwrap_err();
            assert!(
                matches!(error, ConfigError::TenantUrl { .. }),
                "{url}: {error}"
            );
            assert!(
                !error.to_string().contains("pw@"),
                "{url}: user info leaked: {error}"
            );
        }
    }

    #[test]
    fn settings_are_checked() {
        let mut c = config("https://acme.eu.auth0.com");
        c.max_concurrent_calls = 0;
        assert!(c.validate().is_err(), "at least one call must be allowed");
        let mut c = config("https://acme.eu.auth0.com");
        c.client_id = " ".into();
        assert!(matches!(c.validate(), Err(ConfigError::EmptyClientId)));
        let mut c = config("https://acme.eu.auth0.com");
        c.page_size = 0;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Setting {
                name: "page_size",
                ..
            })
        ));
        let mut c = config("https://acme.eu.auth0.com");
        c.request_timeout = Duration::ZERO;
        assert!(matches!(c.validate(), Err(ConfigError::Setting { .. })));
    }

    #[test]
    fn audience_defaults_to_the_management_api() {
        let c = config("https://acme.eu.auth0.com");
        let base = c.validate().unwrap();
        assert_eq!(
            c.effective_audience(&base),
            "https://acme.eu.auth0.com/api/v2/"
        );
        let mut c = c;
        c.audience = Some("https://other/api/v2/".into());
        assert_eq!(c.effective_audience(&base), "https://other/api/v2/");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let debug = format!("{:?}", config("https://acme.eu.auth0.com"));
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
        assert!(debug.contains("companion-proxy"));
    }
}
