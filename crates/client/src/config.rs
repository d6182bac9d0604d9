//! Configuration layers (design.md §5): built-in defaults < user file < managed (organization) layer <
//! `COMPANION_*` environment.
//!
//! A key set by the managed layer is **locked**: neither the user file nor the environment can change it, and
//! [`EffectiveConfig::entries`] reports it as "managed by your organization". An environment variable that tries to
//! override a managed key is ignored and reported in [`EffectiveConfig::ignored_env`].
//!
//! Every source is first parsed into a [`PartialConfig`] (every error names the file or variable and the key),
//! then the layers are merged into an [`EffectiveConfig`] that remembers which layer set each key, and finally
//! [`EffectiveConfig::validate`] checks that required keys are present and yields a typed [`ClientConfig`].
//!
//! For development, demos and tests, [`MANAGED_CONFIG_ENV`] (`COMPANION_MANAGED_CONFIG=/path/config.toml`) points
//! the managed layer at another TOML file, whose keys are locked exactly like those of [`MANAGED_CONFIG_FILE`]. It
//! is a development aid, not a deployment mechanism: on a real managed install the location is the fixed one
//! (`/etc/passkey-companion/config.toml`, the macOS managed preferences, the Windows policy key), and whenever
//! that source sets any key the override is ignored and reported ([`ManagedLayerInfo::ignored_override`]), so a
//! user cannot swap the organization's settings for their own file.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use companion_protocol::api::EnrollmentType;
use companion_protocol::claims::DEFAULT_API_AUDIENCE;
use url::Url;

pub mod managed;

/// Directory name under the user's configuration directory and under `/etc`.
pub const APP_DIR: &str = "passkey-companion";
/// The managed configuration file on Linux and other Unix systems.
pub const MANAGED_CONFIG_FILE: &str = "/etc/passkey-companion/config.toml";
/// Prefix of the environment variables of the environment layer.
pub const ENV_PREFIX: &str = "COMPANION_";
/// Development aid: a TOML file to read as the managed layer instead of the platform's fixed location, which
/// still wins whenever it sets any key (see the module documentation).
pub const MANAGED_CONFIG_ENV: &str = "COMPANION_MANAGED_CONFIG";
/// Default loopback ports, each registered exactly as `http://127.0.0.1:<port>/callback`.
pub const DEFAULT_REDIRECT_PORTS: std::ops::RangeInclusive<u16> = 53180..=53189;
/// Largest number of redirect ports accepted.
pub const MAX_REDIRECT_PORTS: usize = 100;

/// One configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ConfigKey {
    /// `auth0_url`: the tenant base URL; the OIDC issuer is this URL (Auth0: plus `/`).
    Auth0Url,
    /// `client_id`: the public (native) client id.
    ClientId,
    /// `audience`: the proxy API identifier requested in tokens.
    Audience,
    /// `proxy_url`: the backend proxy base URL.
    ProxyUrl,
    /// `redirect_ports`: loopback ports tried in order for the sign-in callback.
    RedirectPorts,
    /// `browser`: a command that receives the URL as its last argument.
    Browser,
    /// `enrollment_types`: which kinds of authenticator the user may add.
    EnrollmentTypes,
    /// `support_url`: where users get help.
    SupportUrl,
    /// `ca_file`: an extra PEM bundle of trusted certificate authorities (in addition to the system roots).
    CaFile,
}

impl ConfigKey {
    /// Every key, in display order.
    pub const ALL: [Self; 9] = [
        Self::Auth0Url,
        Self::ClientId,
        Self::Audience,
        Self::ProxyUrl,
        Self::RedirectPorts,
        Self::Browser,
        Self::EnrollmentTypes,
        Self::SupportUrl,
        Self::CaFile,
    ];

    /// The key as written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth0Url => "auth0_url",
            Self::ClientId => "client_id",
            Self::Audience => "audience",
            Self::ProxyUrl => "proxy_url",
            Self::RedirectPorts => "redirect_ports",
            Self::Browser => "browser",
            Self::EnrollmentTypes => "enrollment_types",
            Self::SupportUrl => "support_url",
            Self::CaFile => "ca_file",
        }
    }

    /// The environment variable of the key, e.g. `COMPANION_AUTH0_URL`.
    pub fn env_var(self) -> String {
        format!("{ENV_PREFIX}{}", self.as_str().to_ascii_uppercase())
    }

    /// Looks a key up by its file spelling.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|key| key.as_str() == name)
    }
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configuration layer, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Built into the program.
    Default,
    /// The user's own file.
    User,
    /// Set by the organization (system file, macOS managed preferences, Windows policy); locked.
    Managed,
    /// A `COMPANION_*` environment variable (development and tests).
    Environment,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Default => "built-in default",
            Self::User => "user file",
            Self::Managed => "managed by your organization",
            Self::Environment => "environment",
        })
    }
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A file (TOML or plist).
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A Windows registry key.
    Registry(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Env(var) => write!(f, "environment variable {var}"),
            Self::Registry(key) => write!(f, "registry key {key}"),
        }
    }
}

/// Why the configuration cannot be loaded. Every variant names where and, when it applies, which key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file exists but cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid TOML (or plist).
    #[error("{origin}: {reason}")]
    Syntax {
        /// The file.
        origin: Origin,
        /// The parser's message.
        reason: String,
    },
    /// A key that this program does not know.
    #[error("{origin}: unknown key `{key}`")]
    UnknownKey {
        /// Where.
        origin: Origin,
        /// The key as written.
        key: String,
    },
    /// A value of the wrong type or shape.
    #[error("{origin}: key `{key}`: {reason}")]
    InvalidValue {
        /// Where.
        origin: Origin,
        /// The key.
        key: ConfigKey,
        /// What is wrong (never contains the value of a secret: this configuration holds none).
        reason: String,
    },
    /// The file named by [`MANAGED_CONFIG_ENV`] does not exist (the platform's own managed file may be absent; an
    /// override that names nothing is a mistake).
    #[error("{env_var} names {}, which does not exist", path.display())]
    ManagedOverrideMissing {
        /// The file.
        path: PathBuf,
        /// The variable that named it.
        env_var: &'static str,
    },
    /// A required key is set by no layer.
    #[error("key `{key}` is not set: add it to {user_file} or set {env_var}")]
    Missing {
        /// The key.
        key: ConfigKey,
        /// The user file that could set it.
        user_file: String,
        /// The environment variable that could set it.
        env_var: String,
    },
}

/// A value as a source holds it, before it is checked against a key's type.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A list.
    List(Vec<Self>),
}

impl RawValue {
    fn kind(&self) -> &'static str {
        match self {
            Self::Str(_) => "a string",
            Self::Int(_) => "an integer",
            Self::Bool(_) => "a boolean",
            Self::List(_) => "a list",
        }
    }
}

/// A browser command: program and arguments; the URL is appended as the last argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserCommand {
    /// The program.
    pub program: String,
    /// Arguments before the URL.
    pub args: Vec<String>,
}

impl BrowserCommand {
    /// Parses a command line: words separated by whitespace, with `'single'` and `"double"` quotes and `\`
    /// escapes (outside single quotes), as a POSIX shell splits words. No expansion of any kind.
    ///
    /// # Errors
    /// A message when the line is empty or a quote is not closed.
    pub fn parse(line: &str) -> Result<Self, String> {
        let words = split_words(line)?;
        Self::from_words(words)
    }

    fn from_words(words: Vec<String>) -> Result<Self, String> {
        let mut words = words.into_iter();
        let program = words
            .next()
            .filter(|program| !program.is_empty())
            .ok_or_else(|| "the command is empty".to_owned())?;
        Ok(Self {
            program,
            args: words.collect(),
        })
    }
}

impl fmt::Display for BrowserCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quote = |word: &str| {
            if !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                word.to_owned()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        };
        f.write_str(&quote(&self.program))?;
        for arg in &self.args {
            write!(f, " {}", quote(arg))?;
        }
        Ok(())
    }
}

fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err("a single quote is not closed".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => current.push(c),
                            None => return Err("a double quote is not closed".to_owned()),
                        },
                        Some(c) => current.push(c),
                        None => return Err("a double quote is not closed".to_owned()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => current.push(c),
                    None => return Err("the command ends with a backslash".to_owned()),
                }
            }
            c => {
                in_word = true;
                current.push(c);
            }
        }
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

/// Values one layer sets; `None` means "not set here".
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PartialConfig {
    /// See [`ConfigKey::Auth0Url`].
    pub auth0_url: Option<Url>,
    /// See [`ConfigKey::ClientId`].
    pub client_id: Option<String>,
    /// See [`ConfigKey::Audience`].
    pub audience: Option<String>,
    /// See [`ConfigKey::ProxyUrl`].
    pub proxy_url: Option<Url>,
    /// See [`ConfigKey::RedirectPorts`].
    pub redirect_ports: Option<Vec<u16>>,
    /// See [`ConfigKey::Browser`].
    pub browser: Option<BrowserCommand>,
    /// See [`ConfigKey::EnrollmentTypes`].
    pub enrollment_types: Option<Vec<EnrollmentType>>,
    /// See [`ConfigKey::SupportUrl`].
    pub support_url: Option<Url>,
    /// See [`ConfigKey::CaFile`].
    pub ca_file: Option<PathBuf>,
}

impl PartialConfig {
    /// The built-in defaults.
    pub fn defaults() -> Self {
        Self {
            audience: Some(DEFAULT_API_AUDIENCE.to_owned()),
            redirect_ports: Some(DEFAULT_REDIRECT_PORTS.collect()),
            enrollment_types: Some(EnrollmentType::ALL.to_vec()),
            ..Self::default()
        }
    }

    /// Whether `key` is set in this layer.
    pub fn is_set(&self, key: ConfigKey) -> bool {
        match key {
            ConfigKey::Auth0Url => self.auth0_url.is_some(),
            ConfigKey::ClientId => self.client_id.is_some(),
            ConfigKey::Audience => self.audience.is_some(),
            ConfigKey::ProxyUrl => self.proxy_url.is_some(),
            ConfigKey::RedirectPorts => self.redirect_ports.is_some(),
            ConfigKey::Browser => self.browser.is_some(),
            ConfigKey::EnrollmentTypes => self.enrollment_types.is_some(),
            ConfigKey::SupportUrl => self.support_url.is_some(),
            ConfigKey::CaFile => self.ca_file.is_some(),
        }
    }

    /// Copies `key` from `other` into `self`.
    fn take_key(&mut self, other: &Self, key: ConfigKey) {
        match key {
            ConfigKey::Auth0Url => self.auth0_url.clone_from(&other.auth0_url),
            ConfigKey::ClientId => self.client_id.clone_from(&other.client_id),
            ConfigKey::Audience => self.audience.clone_from(&other.audience),
            ConfigKey::ProxyUrl => self.proxy_url.clone_from(&other.proxy_url),
            ConfigKey::RedirectPorts => self.redirect_ports.clone_from(&other.redirect_ports),
            ConfigKey::Browser => self.browser.clone_from(&other.browser),
            ConfigKey::EnrollmentTypes => self.enrollment_types.clone_from(&other.enrollment_types),
            ConfigKey::SupportUrl => self.support_url.clone_from(&other.support_url),
            ConfigKey::CaFile => self.ca_file.clone_from(&other.ca_file),
        }
    }

    /// A display form of `key`'s value, if set.
    pub fn display_value(&self, key: ConfigKey) -> Option<String> {
        let join = |items: Vec<String>| items.join(", ");
        match key {
            ConfigKey::Auth0Url => self.auth0_url.as_ref().map(Url::to_string),
            ConfigKey::ClientId => self.client_id.clone(),
            ConfigKey::Audience => self.audience.clone(),
            ConfigKey::ProxyUrl => self.proxy_url.as_ref().map(Url::to_string),
            ConfigKey::RedirectPorts => self
                .redirect_ports
                .as_ref()
                .map(|ports| join(ports.iter().map(u16::to_string).collect())),
            ConfigKey::Browser => self.browser.as_ref().map(BrowserCommand::to_string),
            ConfigKey::EnrollmentTypes => self
                .enrollment_types
                .as_ref()
                .map(|types| join(types.iter().map(|t| t.as_str().to_owned()).collect())),
            ConfigKey::SupportUrl => self.support_url.as_ref().map(Url::to_string),
            ConfigKey::CaFile => self.ca_file.as_ref().map(|p| p.display().to_string()),
        }
    }

    /// Sets `key` from a raw value; `Err` carries the reason (the caller adds where and which key).
    ///
    /// # Errors
    /// A lowercase reason when the value has the wrong type or shape.
    pub fn set(&mut self, key: ConfigKey, value: RawValue) -> Result<(), String> {
        match key {
            ConfigKey::Auth0Url => self.auth0_url = Some(parse_service_url(&expect_str(value)?)?),
            ConfigKey::ClientId => self.client_id = Some(non_empty(&expect_str(value)?)?),
            ConfigKey::Audience => self.audience = Some(non_empty(&expect_str(value)?)?),
            ConfigKey::ProxyUrl => self.proxy_url = Some(parse_service_url(&expect_str(value)?)?),
            ConfigKey::RedirectPorts => self.redirect_ports = Some(parse_ports(value)?),
            ConfigKey::Browser => {
                self.browser = Some(match value {
                    RawValue::Str(line) => BrowserCommand::parse(&line)?,
                    RawValue::List(items) => BrowserCommand::from_words(
                        items
                            .into_iter()
                            .map(expect_str)
                            .collect::<Result<_, _>>()?,
                    )?,
                    other => return Err(format!("expected a string, found {}", other.kind())),
                });
            }
            ConfigKey::EnrollmentTypes => {
                let items = match value {
                    RawValue::Str(list) => list
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    RawValue::List(items) => items
                        .into_iter()
                        .map(expect_str)
                        .collect::<Result<Vec<_>, _>>()?,
                    other => return Err(format!("expected a list, found {}", other.kind())),
                };
                let mut types = Vec::new();
                for item in items {
                    let kind = parse_enrollment_type(&item)?;
                    if !types.contains(&kind) {
                        types.push(kind);
                    }
                }
                self.enrollment_types = Some(types);
            }
            ConfigKey::SupportUrl => {
                let text = expect_str(value)?;
                let url = Url::parse(&text).map_err(|e| format!("not a URL ({e})"))?;
                if !matches!(url.scheme(), "https" | "http" | "mailto") {
                    return Err("must be an https, http or mailto URL".to_owned());
                }
                self.support_url = Some(url);
            }
            ConfigKey::CaFile => {
                self.ca_file = Some(PathBuf::from(non_empty(&expect_str(value)?)?))
            }
        }
        Ok(())
    }

    /// Builds a layer from `(key, value)` pairs of one source, naming `origin` in errors.
    ///
    /// # Errors
    /// [`ConfigError::UnknownKey`] or [`ConfigError::InvalidValue`].
    pub fn from_pairs(
        origin: &Origin,
        pairs: impl IntoIterator<Item = (String, RawValue)>,
    ) -> Result<Self, ConfigError> {
        let mut layer = Self::default();
        for (name, value) in pairs {
            let key = ConfigKey::from_name(&name).ok_or_else(|| ConfigError::UnknownKey {
                origin: origin.clone(),
                key: name.clone(),
            })?;
            layer
                .set(key, value)
                .map_err(|reason| ConfigError::InvalidValue {
                    origin: origin.clone(),
                    key,
                    reason,
                })?;
        }
        Ok(layer)
    }

    /// Parses a TOML document (a user or managed file).
    ///
    /// # Errors
    /// [`ConfigError::Syntax`], [`ConfigError::UnknownKey`] or [`ConfigError::InvalidValue`], naming `path`.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let origin = Origin::File(path.to_path_buf());
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    origin: origin.clone(),
                    reason: e.message().to_owned(),
                })?;
        let mut pairs = Vec::new();
        for (name, value) in table {
            let raw = raw_from_toml(value).map_err(|reason| match ConfigKey::from_name(&name) {
                Some(key) => ConfigError::InvalidValue {
                    origin: origin.clone(),
                    key,
                    reason,
                },
                None => ConfigError::UnknownKey {
                    origin: origin.clone(),
                    key: name.clone(),
                },
            })?;
            pairs.push((name, raw));
        }
        Self::from_pairs(&origin, pairs)
    }

    /// Reads a TOML file; a missing file is an empty layer.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when it exists but cannot be read, or any error of [`PartialConfig::from_toml`].
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_toml(path, &text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Builds the environment layer from `COMPANION_<KEY>` variables; other variables are ignored (the proxy
    /// shares the prefix).
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming the variable.
    pub fn from_env<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut layer = Self::default();
        for (name, value) in vars {
            let name = name.as_ref();
            let Some(key) = ConfigKey::ALL.into_iter().find(|k| k.env_var() == name) else {
                continue;
            };
            layer
                .set(key, RawValue::Str(value.as_ref().to_owned()))
                .map_err(|reason| ConfigError::InvalidValue {
                    origin: Origin::Env(name.to_owned()),
                    key,
                    reason,
                })?;
        }
        Ok(layer)
    }
}

fn raw_from_toml(value: toml::Value) -> Result<RawValue, String> {
    Ok(match value {
        toml::Value::String(s) => RawValue::Str(s),
        toml::Value::Integer(i) => RawValue::Int(i),
        toml::Value::Boolean(b) => RawValue::Bool(b),
        toml::Value::Array(items) => RawValue::List(
            items
                .into_iter()
                .map(raw_from_toml)
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Float(_) => return Err("floating-point numbers are not accepted".to_owned()),
        toml::Value::Datetime(_) => return Err("dates are not accepted".to_owned()),
        toml::Value::Table(_) => return Err("tables are not accepted".to_owned()),
    })
}

fn expect_str(value: RawValue) -> Result<String, String> {
    match value {
        RawValue::Str(s) => Ok(s),
        other => Err(format!("expected a string, found {}", other.kind())),
    }
}

fn non_empty(value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(trimmed.to_owned())
    }
}

/// Whether a URL's host is a loopback host (`localhost`, `127.0.0.0/8`, `::1`).
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => {
            domain.eq_ignore_ascii_case("localhost")
                || domain.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parses a tenant or proxy URL: `https`, or `http` only for loopback hosts; no query, fragment or credentials.
///
/// # Errors
/// A lowercase reason.
pub fn parse_service_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("not a URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        "http" => return Err("http:// is only allowed for loopback hosts; use https://".to_owned()),
        _ => return Err("must be an https:// URL".to_owned()),
    }
    if url.host().is_none() {
        return Err("must have a host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".to_owned());
    }
    Ok(url)
}

fn parse_port(value: i64) -> Result<u16, String> {
    u16::try_from(value)
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| format!("{value} is not a port (1-65535)"))
}

fn parse_ports(value: RawValue) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    let push_range = |from: u16, to: u16, ports: &mut Vec<u16>| -> Result<(), String> {
        if from > to {
            return Err(format!("range {from}-{to} is empty"));
        }
        for port in from..=to {
            if !ports.contains(&port) {
                ports.push(port);
            }
            if ports.len() > MAX_REDIRECT_PORTS {
                return Err(format!("at most {MAX_REDIRECT_PORTS} ports"));
            }
        }
        Ok(())
    };
    let parse_text = |text: &str| -> Result<u16, String> {
        let number: i64 = text
            .trim()
            .parse()
            .map_err(|_| format!("`{}` is not a port number", text.trim()))?;
        parse_port(number)
    };
    let mut items = Vec::new();
    match value {
        RawValue::Str(text) => items.extend(
            text.split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| RawValue::Str(s.to_owned())),
        ),
        RawValue::Int(port) => items.push(RawValue::Int(port)),
        RawValue::List(list) => items = list,
        RawValue::Bool(_) => return Err("expected a list of ports, found a boolean".to_owned()),
    }
    for item in items {
        match item {
            RawValue::Int(port) => {
                let port = parse_port(port)?;
                push_range(port, port, &mut ports)?;
            }
            RawValue::Str(text) => {
                if let Some((from, to)) = text.split_once('-') {
                    push_range(parse_text(from)?, parse_text(to)?, &mut ports)?;
                } else {
                    let port = parse_text(&text)?;
                    push_range(port, port, &mut ports)?;
                }
            }
            other => return Err(format!("expected a port, found {}", other.kind())),
        }
    }
    if ports.is_empty() {
        return Err("at least one port is needed".to_owned());
    }
    Ok(ports)
}

fn parse_enrollment_type(text: &str) -> Result<EnrollmentType, String> {
    EnrollmentType::ALL
        .into_iter()
        .find(|kind| kind.as_str() == text)
        .ok_or_else(|| {
            format!("`{text}` is not an enrollment type (webauthn-platform, webauthn-roaming)")
        })
}

/// Where the managed layer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManagedSource {
    /// No managed layer.
    None,
    /// A TOML file in the user-file schema (Linux: [`MANAGED_CONFIG_FILE`]).
    TomlFile(PathBuf),
    /// A macOS managed-preferences property list in the same schema.
    Plist(PathBuf),
    /// Windows policy registry values under `HKLM\Software\Policies\PasskeyCompanion`.
    WindowsRegistry,
    /// The development override ([`MANAGED_CONFIG_ENV`]): the TOML file `file` is the managed layer, its keys
    /// locked, unless `platform` (the platform's own managed source) sets any key: then the platform's layer is
    /// used and the override is ignored and reported.
    Override {
        /// The file the variable names; it must exist.
        file: PathBuf,
        /// The platform's fixed managed source, which wins when it sets anything.
        platform: Box<Self>,
    },
}

impl ManagedSource {
    /// The platform's fixed managed source: the macOS managed-preferences plist, the Windows policy key, else
    /// [`MANAGED_CONFIG_FILE`].
    pub fn platform() -> Self {
        if cfg!(target_os = "macos") {
            Self::Plist(PathBuf::from(managed::MACOS_MANAGED_PLIST))
        } else if cfg!(windows) {
            Self::WindowsRegistry
        } else {
            Self::TomlFile(PathBuf::from(MANAGED_CONFIG_FILE))
        }
    }

    /// The platform's source, or the development override when `override_file` is set (see
    /// [`MANAGED_CONFIG_ENV`]).
    pub fn with_override(platform: Self, override_file: Option<PathBuf>) -> Self {
        match override_file {
            Some(file) => Self::Override {
                file,
                platform: Box::new(platform),
            },
            None => platform,
        }
    }

    /// Where this source reads from, for display.
    fn location(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::TomlFile(path) | Self::Plist(path) => Some(path.display().to_string()),
            Self::WindowsRegistry => Some(format!(r"HKLM\{}", managed::WINDOWS_POLICY_KEY)),
            Self::Override { file, .. } => Some(file.display().to_string()),
        }
    }

    /// Reads the layer and says where it came from.
    fn load(&self) -> Result<(PartialConfig, ManagedLayerInfo), ConfigError> {
        let info = |location: Option<String>| ManagedLayerInfo {
            location,
            dev_override: false,
            ignored_override: None,
        };
        let layer = match self {
            Self::None => PartialConfig::default(),
            Self::TomlFile(path) => PartialConfig::from_toml_file(path)?,
            Self::Plist(path) => managed::read_plist_file(path)?,
            Self::WindowsRegistry => managed::read_windows_policy()?,
            Self::Override { file, platform } => {
                let (fixed, fixed_info) = platform.load()?;
                if fixed != PartialConfig::default() {
                    return Ok((
                        fixed,
                        ManagedLayerInfo {
                            ignored_override: Some(file.display().to_string()),
                            ..fixed_info
                        },
                    ));
                }
                if !file.exists() {
                    return Err(ConfigError::ManagedOverrideMissing {
                        path: file.clone(),
                        env_var: MANAGED_CONFIG_ENV,
                    });
                }
                let layer = PartialConfig::from_toml_file(file)?;
                return Ok((
                    layer,
                    ManagedLayerInfo {
                        location: self.location(),
                        dev_override: true,
                        ignored_override: None,
                    },
                ));
            }
        };
        Ok((layer, info(self.location())))
    }
}

/// Where the managed layer was read from, for `passkeys config` and the app's settings view.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ManagedLayerInfo {
    /// The file or registry key the organization's settings are read from; `None` when there is no managed source.
    pub location: Option<String>,
    /// Whether `location` is the development override named by [`MANAGED_CONFIG_ENV`].
    pub dev_override: bool,
    /// An override file that was ignored because the platform's managed source sets keys.
    pub ignored_override: Option<String>,
}

/// Where every layer comes from; tests build one in code, the programs use [`ConfigSources::system`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSources {
    /// The user file, if any.
    pub user_file: Option<PathBuf>,
    /// The managed layer.
    pub managed: ManagedSource,
    /// The environment, as `(name, value)` pairs; only `COMPANION_<KEY>` names are read.
    pub env: Vec<(String, String)>,
}

impl ConfigSources {
    /// The platform's sources: the user file under the configuration directory (Linux:
    /// `$XDG_CONFIG_HOME/passkey-companion/config.toml`, else `~/.config/...`), the platform's managed layer (or
    /// the file [`MANAGED_CONFIG_ENV`] names, while the platform's sets nothing), and the process environment
    /// (variables that are not valid UTF-8 are skipped).
    pub fn system() -> Self {
        Self::platform_with_env(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        )
    }

    /// The platform's sources as [`ConfigSources::system`] builds them, for the given environment (`HOME`,
    /// `XDG_CONFIG_HOME`, `APPDATA`, [`MANAGED_CONFIG_ENV`] and the `COMPANION_<KEY>` variables are read from it).
    pub fn platform_with_env(env: Vec<(String, String)>) -> Self {
        let lookup = |name: &str| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let user_file = user_config_dir(&lookup).map(|dir| dir.join(APP_DIR).join("config.toml"));
        let managed = ManagedSource::with_override(
            ManagedSource::platform(),
            lookup(MANAGED_CONFIG_ENV).map(PathBuf::from),
        );
        Self {
            user_file,
            managed,
            env,
        }
    }

    /// Only the given environment (no files): handy for tests and scripts.
    pub fn env_only(env: Vec<(String, String)>) -> Self {
        Self {
            user_file: None,
            managed: ManagedSource::None,
            env,
        }
    }

    /// Loads and merges every layer.
    ///
    /// # Errors
    /// Any [`ConfigError`] of a source.
    pub fn load(&self) -> Result<EffectiveConfig, ConfigError> {
        let user = match &self.user_file {
            Some(path) => PartialConfig::from_toml_file(path)?,
            None => PartialConfig::default(),
        };
        let (managed, managed_info) = self.managed.load()?;
        let env = PartialConfig::from_env(self.env.iter().map(|(k, v)| (k, v)))?;
        let mut effective = EffectiveConfig::merge(&user, &managed, &env);
        effective.user_file = self.user_file.clone();
        effective.managed = managed_info;
        Ok(effective)
    }
}

fn user_config_dir(lookup: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if cfg!(windows) {
        return lookup("APPDATA").map(PathBuf::from);
    }
    if cfg!(target_os = "macos") {
        return lookup("HOME").map(|home| PathBuf::from(home).join("Library/Application Support"));
    }
    lookup("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| lookup("HOME").map(|home| PathBuf::from(home).join(".config")))
}

/// One line of `passkeys config`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigEntry {
    /// The key.
    pub key: &'static str,
    /// Its effective value, if any.
    pub value: Option<String>,
    /// The layer that set it, if any.
    pub layer: Option<Layer>,
    /// Whether the organization set it (users cannot change it).
    pub locked: bool,
}

/// The merged configuration and which layer set each key.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveConfig {
    values: PartialConfig,
    origins: BTreeMap<ConfigKey, Layer>,
    ignored_env: Vec<ConfigKey>,
    user_file: Option<PathBuf>,
    managed: ManagedLayerInfo,
}

impl EffectiveConfig {
    /// Merges the layers over the built-in defaults. A key the managed layer sets is locked: the environment
    /// layer cannot override it (the override is ignored and reported by [`EffectiveConfig::ignored_env`]).
    pub fn merge(user: &PartialConfig, managed: &PartialConfig, env: &PartialConfig) -> Self {
        let mut values = PartialConfig::default();
        let mut origins = BTreeMap::new();
        let mut ignored_env = Vec::new();
        let defaults = PartialConfig::defaults();
        for key in ConfigKey::ALL {
            let layers = [
                (Layer::Default, &defaults),
                (Layer::User, user),
                (Layer::Managed, managed),
                (Layer::Environment, env),
            ];
            for (layer, source) in layers {
                if !source.is_set(key) {
                    continue;
                }
                if layer == Layer::Environment && origins.get(&key) == Some(&Layer::Managed) {
                    ignored_env.push(key);
                    continue;
                }
                values.take_key(source, key);
                origins.insert(key, layer);
            }
        }
        Self {
            values,
            origins,
            ignored_env,
            user_file: None,
            managed: ManagedLayerInfo::default(),
        }
    }

    /// The merged values.
    pub fn values(&self) -> &PartialConfig {
        &self.values
    }

    /// The layer that set `key`, if any did.
    pub fn layer_of(&self, key: ConfigKey) -> Option<Layer> {
        self.origins.get(&key).copied()
    }

    /// Whether the organization set `key`.
    pub fn is_locked(&self, key: ConfigKey) -> bool {
        self.layer_of(key) == Some(Layer::Managed)
    }

    /// Where the managed layer came from (set by [`ConfigSources::load`]; empty after a bare
    /// [`EffectiveConfig::merge`]).
    pub fn managed(&self) -> &ManagedLayerInfo {
        &self.managed
    }

    /// Keys whose `COMPANION_*` variable was ignored because the organization manages them.
    pub fn ignored_env(&self) -> &[ConfigKey] {
        &self.ignored_env
    }

    /// Every key with its value and layer, for display.
    pub fn entries(&self) -> Vec<ConfigEntry> {
        ConfigKey::ALL
            .into_iter()
            .map(|key| ConfigEntry {
                key: key.as_str(),
                value: self.values.display_value(key),
                layer: self.layer_of(key),
                locked: self.is_locked(key),
            })
            .collect()
    }

    /// Checks required keys and returns the typed configuration.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] for the first required key that no layer sets.
    pub fn validate(&self) -> Result<ClientConfig, ConfigError> {
        let missing = |key: ConfigKey| ConfigError::Missing {
            key,
            user_file: self.user_file.as_ref().map_or_else(
                || "the configuration file".to_owned(),
                |p| p.display().to_string(),
            ),
            env_var: key.env_var(),
        };
        let v = &self.values;
        Ok(ClientConfig {
            auth0_url: v
                .auth0_url
                .clone()
                .ok_or_else(|| missing(ConfigKey::Auth0Url))?,
            client_id: v
                .client_id
                .clone()
                .ok_or_else(|| missing(ConfigKey::ClientId))?,
            audience: v
                .audience
                .clone()
                .ok_or_else(|| missing(ConfigKey::Audience))?,
            proxy_url: v
                .proxy_url
                .clone()
                .ok_or_else(|| missing(ConfigKey::ProxyUrl))?,
            redirect_ports: v
                .redirect_ports
                .clone()
                .ok_or_else(|| missing(ConfigKey::RedirectPorts))?,
            browser: v.browser.clone(),
            enrollment_types: v.enrollment_types.clone().unwrap_or_default(),
            support_url: v.support_url.clone(),
            ca_file: v.ca_file.clone(),
        })
    }
}

/// The validated configuration the client runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// Tenant base URL; the OIDC issuer is this URL as written (Auth0: `https://tenant/` with its trailing `/`).
    pub auth0_url: Url,
    /// Public client id.
    pub client_id: String,
    /// Proxy API identifier.
    pub audience: String,
    /// Proxy base URL.
    pub proxy_url: Url,
    /// Loopback ports, tried in order.
    pub redirect_ports: Vec<u16>,
    /// Browser command; `None` means the system default.
    pub browser: Option<BrowserCommand>,
    /// Kinds of authenticator the user may add.
    pub enrollment_types: Vec<EnrollmentType>,
    /// Where users get help.
    pub support_url: Option<Url>,
    /// Extra trusted CA bundle (PEM).
    pub ca_file: Option<PathBuf>,
}

impl ClientConfig {
    /// A configuration for tests against a local tenant and proxy.
    pub fn for_test(
        auth0_url: Url,
        client_id: &str,
        proxy_url: Url,
        redirect_ports: Vec<u16>,
    ) -> Self {
        Self {
            auth0_url,
            client_id: client_id.to_owned(),
            audience: DEFAULT_API_AUDIENCE.to_owned(),
            proxy_url,
            redirect_ports,
            browser: None,
            enrollment_types: EnrollmentType::ALL.to_vec(),
            support_url: None,
            ca_file: None,
        }
    }

    /// The tenant part of the keyring account: host, plus `:port` when not the scheme's default.
    pub fn tenant(&self) -> String {
        let host = self.auth0_url.host_str().unwrap_or_default();
        match self.auth0_url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell() {
        let cmd = BrowserCommand::parse(r#"chromium --headless 'a b' "c \"d\"" e\ f"#).unwrap();
        assert_eq!(cmd.program, "chromium");
        assert_eq!(cmd.args, ["--headless", "a b", r#"c "d""#, "e f"]);
        assert!(BrowserCommand::parse("  ").is_err());
        assert!(BrowserCommand::parse("'open").is_err());
        let back = BrowserCommand::parse(&cmd.to_string()).unwrap();
        assert_eq!(back, cmd, "display quotes so it parses back");
    }

    #[test]
    fn ports_accept_lists_ranges_and_reject_zero() {
        let mut c = PartialConfig::default();
        c.set(
            ConfigKey::RedirectPorts,
            RawValue::Str("53180-53182, 9000".into()),
        )
        .unwrap();
        assert_eq!(
            c.redirect_ports.as_deref(),
            Some(&[53180, 53181, 53182, 9000][..])
        );
        c.set(
            ConfigKey::RedirectPorts,
            RawValue::List(vec![RawValue::Int(1), RawValue::Str("2".into())]),
        )
        .unwrap();
        assert_eq!(c.redirect_ports.as_deref(), Some(&[1, 2][..]));
        assert!(c.set(ConfigKey::RedirectPorts, RawValue::Int(0)).is_err());
        assert!(
            c.set(ConfigKey::RedirectPorts, RawValue::Int(70000))
                .is_err()
        );
        assert!(
            c.set(ConfigKey::RedirectPorts, RawValue::Str("5-1".into()))
                .is_err()
        );
        assert!(
            c.set(ConfigKey::RedirectPorts, RawValue::Str("1-1000".into()))
                .is_err()
        );
        assert!(
            c.set(ConfigKey::RedirectPorts, RawValue::Str("".into()))
                .is_err()
        );
    }

    #[test]
    fn service_urls_allow_http_only_on_loopback() {
        assert!(parse_service_url("https://acme.eu.auth0.com").is_ok());
        assert!(parse_service_url("http://localhost:8780").is_ok());
        assert!(parse_service_url("http://127.0.0.1:8787").is_ok());
        assert!(parse_service_url("http://[::1]:8787").is_ok());
        assert!(parse_service_url("http://acme.eu.auth0.com").is_err());
        assert!(parse_service_url("http://localhost.evil.com").is_err());
        assert!(parse_service_url("ftp://localhost").is_err());
        assert!(parse_service_url("https://u:p@acme.auth0.com").is_err());
        assert!(parse_service_url("https://acme.auth0.com/?x=1").is_err());
    }

    #[test]
    fn tenant_names_the_keyring_account() {
        let config = ClientConfig::for_test(
            Url::parse("http://localhost:8780").unwrap(),
            "c",
            Url::parse("http://127.0.0.1:1").unwrap(),
            vec![1],
        );
        assert_eq!(config.tenant(), "localhost:8780");
        let config = ClientConfig {
            auth0_url: Url::parse("https://acme.eu.auth0.com/").unwrap(),
            ..config
        };
        assert_eq!(config.tenant(), "acme.eu.auth0.com");
    }
}
