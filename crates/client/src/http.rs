//! The one outbound HTTP client: rustls with the platform's root certificates (plus an optional extra CA bundle),
//! `HTTPS_PROXY`/`NO_PROXY` from the environment, connect and request timeouts, redirects off, a user agent.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Connect timeout of every outbound call.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request timeout of every outbound call.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The CA file cannot be read.
    #[error("cannot read the CA file {}", path.display())]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no valid PEM certificate.
    #[error("the CA file {} holds no valid PEM certificate", path.display())]
    InvalidCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The TLS stack could not be set up.
    #[error("cannot set up the HTTP client")]
    Build(#[source] reqwest::Error),
}

/// Builds the outbound client.
///
/// # Errors
/// [`HttpError`] when the CA file is unreadable or invalid, or TLS cannot be set up.
pub fn build_client(extra_ca: Option<&Path>) -> Result<reqwest::Client, HttpError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("passkey-companion/", env!("CARGO_PKG_VERSION")))
        .https_only(false);
    if let Some(path) = extra_ca {
        let pem = std::fs::read(path).map_err(|source| HttpError::ReadCa {
            path: path.to_path_buf(),
            source,
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| HttpError::InvalidCa {
                path: path.to_path_buf(),
                source,
            })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(HttpError::Build)
}
