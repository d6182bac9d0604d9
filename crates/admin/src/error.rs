//! [`AdminError`]: every failure names the step it happened in and, for Auth0 failures, Auth0's status, message
//! and error code. Never a token or a secret.

use companion_mgmt::MgmtError;

use crate::spec::SpecError;

/// A failed provisioning step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// A Management API call failed.
    #[error("{step}: {source}{detail}", detail = auth0_detail(source))]
    Auth0 {
        /// The step, e.g. `create desktop client`.
        step: String,
        /// The call's error.
        #[source]
        source: Box<MgmtError>,
    },
    /// The tenant is not in a state the tool can work with.
    #[error("{step}: {message}")]
    Tenant {
        /// The step.
        step: String,
        /// What is wrong.
        message: String,
    },
    /// The spec is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl AdminError {
    /// The step that failed, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Self::Auth0 { step, .. } | Self::Tenant { step, .. } => Some(step),
            _ => None,
        }
    }
}

/// `: <message> (<errorCode>)` from Auth0's body, when there is one.
fn auth0_detail(error: &MgmtError) -> String {
    match error.body() {
        Some(body) => match &body.error_code {
            Some(code) => format!(" (Auth0 {}: {} [{code}])", body.status_code, body.message),
            None => format!(" (Auth0 {}: {})", body.status_code, body.message),
        },
        None => String::new(),
    }
}
