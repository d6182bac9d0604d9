//! Configuration: one [`Config`] parsed from flags, `COMPANION_*` environment variables and an optional TOML file,
//! then validated into typed [`Settings`].
//!
//! Precedence, highest first: command-line flag, environment variable, `--config` file, built-in default.
//! The file is never discovered implicitly; its keys are the flag names with `_` instead of `-`
//! (e.g. `auth0_url = "https://acme.eu.auth0.com"`), and unknown keys are refused.
//! Every validation error names the flag and the environment variable it came from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use companion_mgmt::RetryPolicy;
use companion_protocol::claims::DEFAULT_API_AUDIENCE;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// Default bind address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
/// Default time a list read also answers the same user's next reads.
pub const DEFAULT_LIST_SHARE_WINDOW: Duration = Duration::from_millis(100);
/// Default step-up window.
pub const DEFAULT_STEP_UP_MAX_AGE: Duration = Duration::from_secs(300);

/// The proxy's settings as given: every field optional, so the flag/env layer can be laid over the file layer.
///
/// `Debug` output redacts the client secret (it is a [`SecretString`]).
#[derive(Debug, Clone, Default, Parser, Deserialize)]
#[command(
    name = "companion-proxy",
    version,
    about = "Passkey Companion backend proxy: turns a user's access token into that user's Management API calls"
)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// TOML file supplying any of the settings below; flags and environment variables override its values.
    #[arg(long, env = "COMPANION_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8787].
    #[arg(long, env = "COMPANION_LISTEN")]
    pub listen: Option<String>,
    /// Auth0 tenant base URL, e.g. `https://acme.eu.auth0.com`: the Management API and the M2M token endpoint.
    /// `http://` is accepted only for loopback hosts. Required.
    #[arg(long, env = "COMPANION_AUTH0_URL")]
    pub auth0_url: Option<String>,
    /// Expected `iss` of access tokens, compared exactly, when it differs from the tenant URL (an Auth0 custom
    /// domain: `https://login.example.com/`) [default: the tenant URL plus `/`].
    #[arg(long, env = "COMPANION_ISSUER")]
    pub issuer: Option<String>,
    /// Where the token signing keys are fetched [default: the issuer plus `.well-known/jwks.json`].
    #[arg(long, env = "COMPANION_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// The proxy API identifier that access tokens must carry in `aud` [default: https://passkey-companion/api].
    #[arg(long, env = "COMPANION_AUDIENCE")]
    pub audience: Option<String>,
    /// Client id of the machine-to-machine application used for the Management API. Required.
    #[arg(long, env = "COMPANION_MGMT_CLIENT_ID")]
    pub mgmt_client_id: Option<String>,
    /// Client secret of that application (prefer `--mgmt-client-secret-file`). One of the two is required.
    #[arg(long, env = "COMPANION_MGMT_CLIENT_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub mgmt_client_secret: Option<SecretString>,
    /// File holding the client secret (surrounding whitespace is ignored).
    #[arg(long, env = "COMPANION_MGMT_CLIENT_SECRET_FILE")]
    pub mgmt_client_secret_file: Option<PathBuf>,
    /// How recent an MFA must be for removals and for enrolling when MFA exists: seconds or a duration such as
    /// `5m` [default: 300].
    #[arg(long, env = "COMPANION_STEP_UP_MAX_AGE")]
    pub step_up_max_age: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf` [default: 30s].
    #[arg(long, env = "COMPANION_CLOCK_LEEWAY")]
    pub clock_leeway: Option<String>,
    /// Timeout of each call to Auth0 (Management API, token endpoint, JWKS) [default: 10s].
    #[arg(long, env = "COMPANION_UPSTREAM_TIMEOUT")]
    pub upstream_timeout: Option<String>,
    /// Timeout of a whole proxy request, retries included [default: 20s].
    #[arg(long, env = "COMPANION_REQUEST_TIMEOUT")]
    pub request_timeout: Option<String>,
    /// Total time one request may wait for Auth0 rate limits before answering 503 [default: 3s].
    #[arg(long, env = "COMPANION_RATE_LIMIT_BUDGET")]
    pub rate_limit_budget: Option<String>,
    /// Minimum time between two JWKS fetches triggered by unknown key ids [default: 30s].
    #[arg(long, env = "COMPANION_JWKS_MIN_REFRESH")]
    pub jwks_min_refresh: Option<String>,
    /// Age after which the JWKS is fetched again even for known key ids [default: 10m].
    #[arg(long, env = "COMPANION_JWKS_MAX_AGE")]
    pub jwks_max_age: Option<String>,
    /// Largest accepted request body in bytes [default: 16384].
    #[arg(long, env = "COMPANION_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Threads running requests [default: 1]. The proxy's work is waiting on Auth0; one thread measured faster on
    /// two shared cores than two, and holds less memory (one malloc arena). Raise it for a busy large fleet.
    #[arg(long, env = "COMPANION_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    /// Requests served at once; more wait [default: 512].
    #[arg(long, env = "COMPANION_MAX_CONCURRENCY")]
    pub max_concurrency: Option<usize>,
    /// How long a user's method list, once read, also answers that user's next list reads: seconds or a duration
    /// such as `100ms`; `0` shares only reads that overlap [default: 100ms]. Changes through the proxy end it.
    #[arg(long, env = "COMPANION_LIST_SHARE_WINDOW")]
    pub list_share_window: Option<String>,
    /// Verified access tokens remembered so repeat calls skip the RSA check [default: 10000].
    #[arg(long, env = "COMPANION_TOKEN_CACHE_SIZE")]
    pub token_cache_size: Option<usize>,
    /// Extra PEM file of CA certificates trusted for Auth0 connections, besides the system roots.
    #[arg(long, env = "COMPANION_EXTRA_CA_FILE")]
    pub extra_ca_file: Option<PathBuf>,
    /// Log format: `json` or `text` [default: json].
    #[arg(long, env = "COMPANION_LOG_FORMAT")]
    pub log_format: Option<String>,
}

fn parse_secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value))
}

/// Why the configuration is unusable. Messages name the flag and environment variable and never hold a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required setting is missing.
    #[error("{setting} is required")]
    Missing {
        /// `--flag / ENV_VAR`.
        setting: &'static str,
    },
    /// A setting has an invalid value.
    #[error("{setting}: {reason}")]
    Invalid {
        /// `--flag / ENV_VAR`.
        setting: &'static str,
        /// Why.
        reason: String,
    },
    /// The `--config` file cannot be read.
    #[error("cannot read config file {path}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The `--config` file is not valid TOML for this schema.
    #[error("invalid config file {path}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// Why (the parser's message names the key, never a secret value from another source).
        #[source]
        source: toml::de::Error,
    },
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Human-readable lines (development).
    Text,
}

/// The proxy API identifier expected in `aud`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(pub String);

/// The token issuer, compared exactly with `iss`: by default the tenant URL plus `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer(pub String);

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bind address.
    pub listen: SocketAddr,
    /// Tenant base URL (no trailing slash in [`Settings::tenant_base`]).
    pub auth0_url: Url,
    /// Expected `iss`.
    pub issuer: Issuer,
    /// Where the JWKS is fetched.
    pub jwks_url: Url,
    /// Expected `aud` member.
    pub audience: Audience,
    /// M2M client id.
    pub mgmt_client_id: String,
    /// M2M client secret.
    pub mgmt_client_secret: SecretString,
    /// Step-up window.
    pub step_up_max_age: Duration,
    /// Leeway on `exp`/`nbf`.
    pub clock_leeway: Duration,
    /// Timeout of each upstream call.
    pub upstream_timeout: Duration,
    /// Timeout of a whole request.
    pub request_timeout: Duration,
    /// Retries and rate-limit waits of Management calls.
    pub mgmt_retry: RetryPolicy,
    /// Minimum time between unknown-`kid` JWKS fetches.
    pub jwks_min_refresh: Duration,
    /// Maximum age of the JWKS before a refetch.
    pub jwks_max_age: Duration,
    /// Body size limit.
    pub max_body_bytes: usize,
    /// Runtime worker threads.
    pub worker_threads: usize,
    /// Concurrency limit.
    pub max_concurrency: usize,
    /// How long a successful list read also answers the same user's next reads.
    pub list_share_window: Duration,
    /// Verified-token cache size.
    pub token_cache_size: usize,
    /// Extra CA file.
    pub extra_ca_file: Option<PathBuf>,
    /// Log format.
    pub log_format: LogFormat,
}

impl Settings {
    /// The tenant base URL without a trailing slash, e.g. `https://acme.eu.auth0.com` (the Management API host,
    /// which may differ from the issuer's).
    pub fn tenant_base(&self) -> String {
        self.auth0_url.as_str().trim_end_matches('/').to_owned()
    }

    /// Settings for an in-process test against `auth0_url` with the dev tenant's demo proxy client: port 0,
    /// short timeouts, no list share window (only overlapping reads share).
    ///
    /// # Errors
    /// [`ConfigError`] when `auth0_url` is not acceptable.
    pub fn for_test(
        auth0_url: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Self, ConfigError> {
        let mut settings = Config {
            listen: Some("127.0.0.1:0".to_owned()),
            auth0_url: Some(auth0_url.to_owned()),
            mgmt_client_id: Some(client_id.to_owned()),
            mgmt_client_secret: Some(SecretString::from(client_secret)),
            upstream_timeout: Some("5s".to_owned()),
            request_timeout: Some("10s".to_owned()),
            log_format: Some("json".to_owned()),
            ..Config::default()
        }
        .validate()?;
        // Tests change the tenant behind the proxy's back and read at once; overlapping reads still share.
        settings.list_share_window = Duration::ZERO;
        settings.mgmt_retry = RetryPolicy {
            max_attempts: 2,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
            rate_limit_budget: Duration::from_secs(2),
            rate_limit_min_wait: Duration::from_millis(100),
            rate_limit_max_wait: Duration::from_secs(2),
            rate_limit_padding_percent: 25,
            max_rate_limit_retries: 3,
        };
        Ok(settings)
    }
}

const LISTEN: &str = "--listen / COMPANION_LISTEN";
const AUTH0_URL: &str = "--auth0-url / COMPANION_AUTH0_URL";
const ISSUER: &str = "--issuer / COMPANION_ISSUER";
const JWKS_URL: &str = "--jwks-url / COMPANION_JWKS_URL";
const AUDIENCE: &str = "--audience / COMPANION_AUDIENCE";
const CLIENT_ID: &str = "--mgmt-client-id / COMPANION_MGMT_CLIENT_ID";
const CLIENT_SECRET: &str = "--mgmt-client-secret / COMPANION_MGMT_CLIENT_SECRET (or --mgmt-client-secret-file / COMPANION_MGMT_CLIENT_SECRET_FILE)";
const SECRET_FILE: &str = "--mgmt-client-secret-file / COMPANION_MGMT_CLIENT_SECRET_FILE";
const STEP_UP: &str = "--step-up-max-age / COMPANION_STEP_UP_MAX_AGE";
const LEEWAY: &str = "--clock-leeway / COMPANION_CLOCK_LEEWAY";
const UPSTREAM_TIMEOUT: &str = "--upstream-timeout / COMPANION_UPSTREAM_TIMEOUT";
const REQUEST_TIMEOUT: &str = "--request-timeout / COMPANION_REQUEST_TIMEOUT";
const BUDGET: &str = "--rate-limit-budget / COMPANION_RATE_LIMIT_BUDGET";
const JWKS_MIN: &str = "--jwks-min-refresh / COMPANION_JWKS_MIN_REFRESH";
const JWKS_MAX: &str = "--jwks-max-age / COMPANION_JWKS_MAX_AGE";
const BODY: &str = "--max-body-bytes / COMPANION_MAX_BODY_BYTES";
const CONCURRENCY: &str = "--max-concurrency / COMPANION_MAX_CONCURRENCY";
const SHARE_WINDOW: &str = "--list-share-window / COMPANION_LIST_SHARE_WINDOW";
const WORKERS: &str = "--worker-threads / COMPANION_WORKER_THREADS";
const CACHE: &str = "--token-cache-size / COMPANION_TOKEN_CACHE_SIZE";
const LOG_FORMAT: &str = "--log-format / COMPANION_LOG_FORMAT";

/// Parses seconds (`300`) or a humantime duration (`5m`, `1h 30s`).
fn duration(
    setting: &'static str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(raw) = value.map(str::trim) else {
        return Ok(default);
    };
    let invalid = |reason: String| ConfigError::Invalid { setting, reason };
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return raw
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| invalid(e.to_string()));
    }
    humantime::parse_duration(raw)
        .map_err(|e| invalid(format!("not a duration ({e}); use seconds or e.g. 5m")))
}

fn positive(setting: &'static str, value: Duration) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::Invalid {
            setting,
            reason: "must be greater than zero".to_owned(),
        });
    }
    Ok(value)
}

fn count(
    setting: &'static str,
    value: Option<usize>,
    default: usize,
) -> Result<usize, ConfigError> {
    let value = value.unwrap_or(default);
    if value == 0 {
        return Err(ConfigError::Invalid {
            setting,
            reason: "must be at least 1".to_owned(),
        });
    }
    Ok(value)
}

/// Validates a tenant URL: `https://`, or `http://` on a loopback host; no user info, path, query or fragment.
/// Returns the URL and the issuer (base plus `/`).
fn tenant_url(raw: &str) -> Result<(Url, Issuer), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        setting: AUTH0_URL,
        reason: reason.to_owned(),
    };
    let url = Url::parse(raw.trim()).map_err(|e| invalid(&format!("not a URL ({e})")))?;
    let host = url.host().ok_or_else(|| invalid("the URL has no host"))?;
    match url.scheme() {
        "https" => {}
        "http" if companion_mgmt::config::is_loopback_host(&host) => {}
        "http" => return Err(invalid("http:// is allowed only for loopback hosts")),
        _ => return Err(invalid("the scheme must be https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("the URL must not contain user info"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("the URL must not have a query or fragment"));
    }
    if !(url.path().is_empty() || url.path() == "/") {
        return Err(invalid("the URL must not have a path"));
    }
    let base = url.as_str().trim_end_matches('/').to_owned();
    Ok((url, Issuer(format!("{base}/"))))
}

/// Validates the `issuer` override: an `https://` URL (or `http://` on a loopback host) without user info, query
/// or fragment. The string is kept exactly as given (trimmed), since `iss` is compared byte for byte.
fn issuer_url(raw: &str) -> Result<Issuer, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        setting: ISSUER,
        reason: reason.to_owned(),
    };
    let raw = raw.trim();
    let url = remote_url(raw).map_err(|reason| invalid(&reason))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("the URL must not have a query or fragment"));
    }
    Ok(Issuer(raw.to_owned()))
}

/// Validates the `jwks_url` override, or derives it from the issuer (`<issuer>.well-known/jwks.json`, with a `/`
/// added when the issuer has none at its end).
fn jwks_url(raw: Option<&str>, issuer: &Issuer) -> Result<Url, ConfigError> {
    let (setting, candidate) = match raw {
        Some(raw) => (JWKS_URL, raw.trim().to_owned()),
        None => {
            let separator = if issuer.0.ends_with('/') { "" } else { "/" };
            (
                ISSUER,
                format!("{}{separator}.well-known/jwks.json", issuer.0),
            )
        }
    };
    let url = remote_url(&candidate).map_err(|reason| ConfigError::Invalid {
        setting,
        reason: if raw.is_some() {
            reason
        } else {
            format!("the derived JWKS URL {candidate} is unusable ({reason})")
        },
    })?;
    if url.fragment().is_some() {
        return Err(ConfigError::Invalid {
            setting,
            reason: "the URL must not have a fragment".to_owned(),
        });
    }
    Ok(url)
}

/// The checks every upstream URL passes: parses, has a host, is `https://` (or `http://` on a loopback host) and
/// carries no user info.
fn remote_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    let host = url.host().ok_or("the URL has no host")?;
    match url.scheme() {
        "https" => {}
        "http" if companion_mgmt::config::is_loopback_host(&host) => {}
        "http" => return Err("http:// is allowed only for loopback hosts".to_owned()),
        _ => return Err("the scheme must be https".to_owned()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL must not contain user info".to_owned());
    }
    Ok(url)
}

fn read_secret_file(path: &Path) -> Result<SecretString, ConfigError> {
    let contents = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
        setting: SECRET_FILE,
        reason: format!("cannot read {} ({e})", path.display()),
    })?;
    let secret = contents.trim();
    if secret.is_empty() {
        return Err(ConfigError::Invalid {
            setting: SECRET_FILE,
            reason: format!("{} is empty", path.display()),
        });
    }
    Ok(SecretString::from(secret))
}

impl Config {
    /// Parses flags and environment, then lays them over the `--config` file if one was named.
    ///
    /// # Errors
    /// [`ConfigError`] when the file cannot be read or parsed.
    pub fn load() -> Result<Self, ConfigError> {
        Self::parse().with_file()
    }

    /// Lays these values over the `--config` file's, if a file was named.
    ///
    /// # Errors
    /// [`ConfigError`] when the file cannot be read or parsed.
    pub fn with_file(self) -> Result<Self, ConfigError> {
        match self.config.clone() {
            Some(path) => {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| ConfigError::ReadFile {
                        path: path.clone(),
                        source,
                    })?;
                let file: Self = toml::from_str(&text)
                    .map_err(|source| ConfigError::ParseFile { path, source })?;
                Ok(self.over(file))
            }
            None => Ok(self),
        }
    }

    /// `self`'s values where set, else `lower`'s.
    #[must_use]
    pub fn over(self, lower: Self) -> Self {
        Self {
            config: self.config.or(lower.config),
            listen: self.listen.or(lower.listen),
            auth0_url: self.auth0_url.or(lower.auth0_url),
            issuer: self.issuer.or(lower.issuer),
            jwks_url: self.jwks_url.or(lower.jwks_url),
            audience: self.audience.or(lower.audience),
            mgmt_client_id: self.mgmt_client_id.or(lower.mgmt_client_id),
            mgmt_client_secret: self.mgmt_client_secret.or(lower.mgmt_client_secret),
            mgmt_client_secret_file: self
                .mgmt_client_secret_file
                .or(lower.mgmt_client_secret_file),
            step_up_max_age: self.step_up_max_age.or(lower.step_up_max_age),
            clock_leeway: self.clock_leeway.or(lower.clock_leeway),
            upstream_timeout: self.upstream_timeout.or(lower.upstream_timeout),
            request_timeout: self.request_timeout.or(lower.request_timeout),
            rate_limit_budget: self.rate_limit_budget.or(lower.rate_limit_budget),
            jwks_min_refresh: self.jwks_min_refresh.or(lower.jwks_min_refresh),
            jwks_max_age: self.jwks_max_age.or(lower.jwks_max_age),
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            worker_threads: self.worker_threads.or(lower.worker_threads),
            max_concurrency: self.max_concurrency.or(lower.max_concurrency),
            list_share_window: self.list_share_window.or(lower.list_share_window),
            token_cache_size: self.token_cache_size.or(lower.token_cache_size),
            extra_ca_file: self.extra_ca_file.or(lower.extra_ca_file),
            log_format: self.log_format.or(lower.log_format),
        }
    }

    /// Validates into typed [`Settings`].
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid setting.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let listen_raw = self.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = listen_raw
            .trim()
            .parse()
            .map_err(|_| ConfigError::Invalid {
                setting: LISTEN,
                reason: "expected an address such as 127.0.0.1:8787".to_owned(),
            })?;
        let raw_url = self
            .auth0_url
            .as_deref()
            .ok_or(ConfigError::Missing { setting: AUTH0_URL })?;
        let (auth0_url, default_issuer) = tenant_url(raw_url)?;
        let issuer = match self.issuer.as_deref() {
            Some(raw) => issuer_url(raw)?,
            None => default_issuer,
        };
        let jwks_url = jwks_url(self.jwks_url.as_deref(), &issuer)?;
        let audience = self
            .audience
            .unwrap_or_else(|| DEFAULT_API_AUDIENCE.to_owned());
        if audience.trim().is_empty() {
            return Err(ConfigError::Invalid {
                setting: AUDIENCE,
                reason: "must not be empty".to_owned(),
            });
        }
        let mgmt_client_id = self
            .mgmt_client_id
            .filter(|id| !id.trim().is_empty())
            .ok_or(ConfigError::Missing { setting: CLIENT_ID })?;
        let mgmt_client_secret = match (self.mgmt_client_secret, &self.mgmt_client_secret_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    setting: CLIENT_SECRET,
                    reason: "set the secret or the secret file, not both".to_owned(),
                });
            }
            (Some(secret), None) if !secret.expose_secret().trim().is_empty() => secret,
            (Some(_), None) => {
                return Err(ConfigError::Invalid {
                    setting: CLIENT_SECRET,
                    reason: "must not be empty".to_owned(),
                });
            }
            (None, Some(path)) => read_secret_file(path)?,
            (None, None) => {
                return Err(ConfigError::Missing {
                    setting: CLIENT_SECRET,
                });
            }
        };
        let step_up_max_age = duration(
            STEP_UP,
            self.step_up_max_age.as_deref(),
            DEFAULT_STEP_UP_MAX_AGE,
        )?;
        let clock_leeway = duration(
            LEEWAY,
            self.clock_leeway.as_deref(),
            Duration::from_secs(30),
        )?;
        if clock_leeway > Duration::from_secs(300) {
            return Err(ConfigError::Invalid {
                setting: LEEWAY,
                reason: "must be at most 5 minutes".to_owned(),
            });
        }
        let upstream_timeout = positive(
            UPSTREAM_TIMEOUT,
            duration(
                UPSTREAM_TIMEOUT,
                self.upstream_timeout.as_deref(),
                Duration::from_secs(10),
            )?,
        )?;
        let request_timeout = positive(
            REQUEST_TIMEOUT,
            duration(
                REQUEST_TIMEOUT,
                self.request_timeout.as_deref(),
                Duration::from_secs(20),
            )?,
        )?;
        let rate_limit_budget = duration(
            BUDGET,
            self.rate_limit_budget.as_deref(),
            Duration::from_secs(3),
        )?;
        let jwks_min_refresh = duration(
            JWKS_MIN,
            self.jwks_min_refresh.as_deref(),
            Duration::from_secs(30),
        )?;
        let jwks_max_age = positive(
            JWKS_MAX,
            duration(
                JWKS_MAX,
                self.jwks_max_age.as_deref(),
                Duration::from_secs(600),
            )?,
        )?;
        let list_share_window = duration(
            SHARE_WINDOW,
            self.list_share_window.as_deref(),
            DEFAULT_LIST_SHARE_WINDOW,
        )?;
        if list_share_window > Duration::from_secs(5) {
            return Err(ConfigError::Invalid {
                setting: SHARE_WINDOW,
                reason: "must be at most 5s (lists must not go stale)".to_owned(),
            });
        }
        let log_format = match self.log_format.as_deref().map(str::trim) {
            None | Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    setting: LOG_FORMAT,
                    reason: "expected json or text".to_owned(),
                });
            }
        };
        Ok(Settings {
            listen,
            auth0_url,
            issuer,
            jwks_url,
            audience: Audience(audience),
            mgmt_client_id,
            mgmt_client_secret,
            step_up_max_age,
            clock_leeway,
            upstream_timeout,
            request_timeout,
            mgmt_retry: RetryPolicy {
                rate_limit_budget,
                ..RetryPolicy::default()
            },
            jwks_min_refresh,
            jwks_max_age,
            max_body_bytes: count(BODY, self.max_body_bytes, 16 * 1024)?,
            worker_threads: match count(WORKERS, self.worker_threads, 1)? {
                workers if workers > 256 => {
                    return Err(ConfigError::Invalid {
                        setting: WORKERS,
                        reason: "must be at most 256".to_owned(),
                    });
                }
                workers => workers,
            },
            max_concurrency: count(CONCURRENCY, self.max_concurrency, 512)?,
            list_share_window,
            token_cache_size: count(CACHE, self.token_cache_size, 10_000)?,
            extra_ca_file: self.extra_ca_file,
            log_format,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Config {
        Config {
            auth0_url: Some("https://acme.eu.auth0.com".into()),
            mgmt_client_id: Some("proxy".into()),
            mgmt_client_secret: Some(SecretString::from("top-secret-value")),
            ..Config::default()
        }
    }

    #[test]
    fn defaults_follow_the_design_table() {
        let settings = minimal().validate().unwrap();
        assert_eq!(settings.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(settings.issuer.0, "https://acme.eu.auth0.com/");
        assert_eq!(settings.tenant_base(), "https://acme.eu.auth0.com");
        assert_eq!(settings.audience.0, DEFAULT_API_AUDIENCE);
        assert_eq!(settings.step_up_max_age, Duration::from_secs(300));
        assert_eq!(settings.max_body_bytes, 16 * 1024);
        assert_eq!(settings.log_format, LogFormat::Json);
        assert_eq!(settings.list_share_window, Duration::from_millis(100));
        assert_eq!(settings.worker_threads, 1);
    }

    #[test]
    fn worker_threads_are_bounded() {
        let mut config = minimal();
        config.worker_threads = Some(4);
        assert_eq!(config.validate().unwrap().worker_threads, 4);
        for bad in [0, 257] {
            let mut config = minimal();
            config.worker_threads = Some(bad);
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains("COMPANION_WORKER_THREADS"), "{bad}: {error}");
        }
    }

    #[test]
    fn errors_name_the_flag_and_the_env_var() {
        let mut config = minimal();
        config.auth0_url = None;
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("COMPANION_AUTH0_URL"), "{message}");
        assert!(message.contains("--auth0-url"), "{message}");

        let mut config = minimal();
        config.step_up_max_age = Some("soon".into());
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("COMPANION_STEP_UP_MAX_AGE"), "{message}");

        let mut config = minimal();
        config.mgmt_client_secret = None;
        let message = config.validate().unwrap_err().to_string();
        assert!(
            message.contains("COMPANION_MGMT_CLIENT_SECRET"),
            "{message}"
        );
    }

    #[test]
    fn http_is_only_for_loopback() {
        for ok in [
            "http://localhost:8780",
            "http://127.0.0.1:9",
            "http://[::1]:9",
            "https://acme.eu.auth0.com/",
        ] {
            let mut config = minimal();
            config.auth0_url = Some(ok.into());
            assert!(config.validate().is_ok(), "{ok} must be accepted");
        }
        for bad in [
            "http://acme.eu.auth0.com",
            "http://10.0.0.1",
            "ftp://localhost",
            "https://acme.eu.auth0.com/tenant",
            "https://u:p@acme.eu.auth0.com",
            "https://acme.eu.auth0.com/?q=1",
            "not a url",
        ] {
            let mut config = minimal();
            config.auth0_url = Some(bad.into());
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains("COMPANION_AUTH0_URL"), "{bad}: {error}");
        }
    }

    #[test]
    fn issuer_and_jwks_url_default_to_the_tenant() {
        let settings = minimal().validate().unwrap();
        assert_eq!(settings.issuer.0, "https://acme.eu.auth0.com/");
        assert_eq!(
            settings.jwks_url.as_str(),
            "https://acme.eu.auth0.com/.well-known/jwks.json"
        );
    }

    #[test]
    fn a_custom_domain_issuer_moves_the_jwks_but_not_the_management_api() {
        let mut config = minimal();
        config.issuer = Some("https://login.example.com/".into());
        let settings = config.validate().unwrap();
        assert_eq!(settings.issuer.0, "https://login.example.com/");
        assert_eq!(
            settings.jwks_url.as_str(),
            "https://login.example.com/.well-known/jwks.json",
            "the JWKS follows the issuer"
        );
        assert_eq!(
            settings.tenant_base(),
            "https://acme.eu.auth0.com",
            "the Management API stays on the tenant"
        );
    }

    #[test]
    fn the_issuer_is_kept_exactly_and_the_jwks_url_can_be_set() {
        let mut config = minimal();
        config.issuer = Some(" http://127.0.0.1:3000 ".into());
        config.jwks_url = Some("http://127.0.0.1:3000/jwks".into());
        let settings = config.validate().unwrap();
        assert_eq!(
            settings.issuer.0, "http://127.0.0.1:3000",
            "no slash is added: iss is compared exactly"
        );
        assert_eq!(settings.jwks_url.as_str(), "http://127.0.0.1:3000/jwks");

        let mut config = minimal();
        config.issuer = Some("http://127.0.0.1:3000".into());
        let settings = config.validate().unwrap();
        assert_eq!(
            settings.jwks_url.as_str(),
            "http://127.0.0.1:3000/.well-known/jwks.json"
        );
    }

    #[test]
    fn bad_issuer_and_jwks_urls_name_their_key() {
        for bad in [
            "not a url",
            "http://login.example.com/",
            "ftp://login.example.com/",
            "https://u:p@login.example.com/",
            "https://login.example.com/?q=1",
        ] {
            let mut config = minimal();
            config.issuer = Some(bad.into());
            let error = config.validate().unwrap_err().to_string();
            assert!(
                error.contains("COMPANION_ISSUER") && error.contains("--issuer"),
                "{bad}: {error}"
            );
        }
        for bad in [
            "jwks.json",
            "http://keys.example.com/jwks.json",
            "https://u@keys.example.com/jwks.json",
            "https://keys.example.com/jwks.json#x",
        ] {
            let mut config = minimal();
            config.jwks_url = Some(bad.into());
            let error = config.validate().unwrap_err().to_string();
            assert!(
                error.contains("COMPANION_JWKS_URL") && error.contains("--jwks-url"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn issuer_and_jwks_url_come_from_the_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy.toml");
        std::fs::write(
            &path,
            "auth0_url = \"https://acme.eu.auth0.com\"\nmgmt_client_id = \"id\"\n\
             mgmt_client_secret = \"s\"\nissuer = \"https://login.example.com/\"\n",
        )
        .unwrap();
        let config = Config::try_parse_from([
            "companion-proxy",
            "--config",
            path.to_str().unwrap(),
            "--jwks-url",
            "https://keys.example.com/jwks.json",
        ])
        .unwrap();
        let settings = config.with_file().unwrap().validate().unwrap();
        assert_eq!(settings.issuer.0, "https://login.example.com/");
        assert_eq!(
            settings.jwks_url.as_str(),
            "https://keys.example.com/jwks.json"
        );
    }

    #[test]
    fn durations_accept_seconds_and_humantime() {
        let mut config = minimal();
        config.step_up_max_age = Some("120".into());
        config.clock_leeway = Some("10s".into());
        config.jwks_max_age = Some("5m".into());
        config.list_share_window = Some("250ms".into());
        let settings = config.validate().unwrap();
        assert_eq!(settings.list_share_window, Duration::from_millis(250));
        assert_eq!(settings.step_up_max_age, Duration::from_secs(120));
        assert_eq!(settings.clock_leeway, Duration::from_secs(10));
        assert_eq!(settings.jwks_max_age, Duration::from_secs(300));
    }

    #[test]
    fn file_values_are_overridden_by_flags_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let secret_path = dir.path().join("secret");
        std::fs::write(&secret_path, "  file-secret-value\n").unwrap();
        let path = dir.path().join("proxy.toml");
        std::fs::write(
            &path,
            format!(
                "auth0_url = \"https://file.example.com\"\nmgmt_client_id = \"from-file\"\n\
                 mgmt_client_secret_file = \"{}\"\nstep_up_max_age = \"10m\"\n",
                secret_path.display()
            ),
        )
        .unwrap();
        let flags = Config {
            config: Some(path),
            mgmt_client_id: Some("from-flag".into()),
            ..Config::default()
        };
        let settings = flags.with_file().unwrap().validate().unwrap();
        assert_eq!(settings.issuer.0, "https://file.example.com/");
        assert_eq!(
            settings.mgmt_client_id, "from-flag",
            "flags win over the file"
        );
        assert_eq!(settings.step_up_max_age, Duration::from_secs(600));
        assert_eq!(
            settings.mgmt_client_secret.expose_secret(),
            "file-secret-value",
            "the secret file is trimmed"
        );
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy.toml");
        std::fs::write(&path, "auth0_ur = \"https://typo.example.com\"\n").unwrap();
        let error = Config {
            config: Some(path),
            ..Config::default()
        }
        .with_file()
        .unwrap_err();
        assert!(matches!(error, ConfigError::ParseFile { .. }), "{error}");
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let config = minimal();
        let debug = format!("{config:?}");
        assert!(!debug.contains("top-secret-value"), "{debug}");
        let settings = config.validate().unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("top-secret-value"), "{debug}");
    }

    #[test]
    fn clap_reads_flags() {
        let config = Config::try_parse_from([
            "companion-proxy",
            "--auth0-url",
            "https://acme.eu.auth0.com",
            "--mgmt-client-id",
            "id",
            "--mgmt-client-secret",
            "s",
            "--step-up-max-age",
            "60",
        ])
        .unwrap();
        let settings = config.validate().unwrap();
        assert_eq!(settings.step_up_max_age, Duration::from_secs(60));
    }
}
