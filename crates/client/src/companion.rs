//! [`Companion`]: the session plus the proxy — what the desktop app and the CLI call.
//!
//! Every proxy call takes a fresh-enough access token from the session; when the proxy rejects it
//! (`invalid_token`), the session refreshes once and the call is retried once. Enrollment opens the ticket in the
//! browser and polls the list with backoff until a new method of the requested type appears.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use companion_protocol::api::{
    Authenticator, AuthenticatorList, EnrollmentResponse, EnrollmentType,
};
use openidconnect::AccessToken;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::browser::{BrowserLauncher, LaunchError};
use crate::clock::Clock;
use crate::config::ClientConfig;
use crate::oidc::AuthError;
use crate::proxy::{ProxyClient, ProxyError};
use crate::session::Session;
use crate::store::TokenStore;

/// How enrollment waits for the new method.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    /// Give up after this long.
    pub timeout: Duration,
    /// First pause between polls.
    pub first_interval: Duration,
    /// Longest pause between polls (the pause grows by half each time up to this).
    pub max_interval: Duration,
    /// Cancels the wait.
    pub cancel: CancellationToken,
}

impl Default for EnrollOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
            first_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(5),
            cancel: CancellationToken::new(),
        }
    }
}

/// Why an enrollment did not produce a new method.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollError {
    /// The organization does not offer this kind (`enrollment_types`).
    #[error("adding a {kind} authenticator is not offered by your organization")]
    NotOffered {
        /// The kind.
        kind: EnrollmentType,
    },
    /// A proxy call failed (including step-up required).
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The ticket could not be opened.
    #[error(transparent)]
    Browser(#[from] LaunchError),
    /// No new method appeared in time.
    #[error("no new {kind} authenticator appeared within {}s; finish in the browser and try again", after.as_secs())]
    TimedOut {
        /// The kind.
        kind: EnrollmentType,
        /// The bound.
        after: Duration,
    },
    /// Cancelled by the user.
    #[error("the enrollment was cancelled")]
    Cancelled,
}

impl EnrollError {
    /// A stable machine-readable code for UIs: `not_offered`, `timed_out`, `cancelled`, `browser`, or the proxy
    /// error's [`ProxyError::code`].
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotOffered { .. } => "not_offered",
            Self::Proxy(error) => error.code(),
            Self::Browser(_) => "browser",
            Self::TimedOut { .. } => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The session and the proxy client.
#[derive(Debug)]
pub struct Companion {
    session: Session,
    proxy: ProxyClient,
}

impl Companion {
    /// A companion for `config`.
    ///
    /// # Errors
    /// [`AuthError::Http`] when the HTTP client cannot be built.
    pub fn new(
        config: ClientConfig,
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        let proxy_url = config.proxy_url.clone();
        let session = Session::new(config, store, clock)?;
        let proxy = ProxyClient::new(session.http().clone(), proxy_url);
        Ok(Self { session, proxy })
    }

    /// The session (sign-in, status, sign-out).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The bare proxy client.
    pub fn proxy(&self) -> &ProxyClient {
        &self.proxy
    }

    async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, ProxyError>
    where
        F: Fn(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, ProxyError>>,
    {
        let token = self.session.access_token().await?;
        match call(token).await {
            Err(ProxyError::InvalidToken) => {
                let token = self.session.refresh().await?;
                call(token).await
            }
            other => other,
        }
    }

    /// The user's authenticators.
    ///
    /// # Errors
    /// [`ProxyError`].
    pub async fn list(&self) -> Result<AuthenticatorList, ProxyError> {
        self.with_token(|t| async move { self.proxy.list(&t).await })
            .await
    }

    /// The list body exactly as the proxy sent it.
    ///
    /// # Errors
    /// [`ProxyError`].
    pub async fn list_raw(&self) -> Result<String, ProxyError> {
        self.with_token(|t| async move { self.proxy.list_raw(&t).await })
            .await
    }

    /// Renames an authenticator.
    ///
    /// # Errors
    /// [`ProxyError`].
    pub async fn rename(&self, id: &str, name: &str) -> Result<Authenticator, ProxyError> {
        self.with_token(|t| async move { self.proxy.rename(&t, id, name).await })
            .await
    }

    /// Removes an authenticator; [`ProxyError::StepUpRequired`] asks for a step-up sign-in first.
    ///
    /// # Errors
    /// [`ProxyError`].
    pub async fn remove(&self, id: &str) -> Result<(), ProxyError> {
        self.with_token(|t| async move { self.proxy.remove(&t, id).await })
            .await
    }

    /// Asks the proxy for an enrollment ticket.
    ///
    /// # Errors
    /// [`EnrollError::NotOffered`] or a proxy error.
    pub async fn create_enrollment(
        &self,
        kind: EnrollmentType,
    ) -> Result<EnrollmentResponse, EnrollError> {
        if !self.session.config().enrollment_types.contains(&kind) {
            return Err(EnrollError::NotOffered { kind });
        }
        Ok(self
            .with_token(|t| async move { self.proxy.create_enrollment(&t, kind).await })
            .await?)
    }

    /// Enrolls a new authenticator: creates a ticket, opens `ticket_url` with `launcher`, then polls the list with
    /// backoff until a method of that type that was not there before appears, and returns it.
    ///
    /// # Errors
    /// [`EnrollError`].
    pub async fn enroll(
        &self,
        kind: EnrollmentType,
        launcher: &dyn BrowserLauncher,
        options: &EnrollOptions,
    ) -> Result<Authenticator, EnrollError> {
        let before: HashSet<String> = self
            .list()
            .await?
            .authenticators
            .into_iter()
            .map(|a| a.id)
            .collect();
        let ticket = self.create_enrollment(kind).await?;
        let url = Url::parse(&ticket.ticket_url).map_err(|e| ProxyError::Decode {
            reason: format!("ticket_url is not a URL ({e})"),
        })?;
        launcher.open(&url)?;
        self.wait_for_new(kind, &before, options).await
    }

    /// Polls until a method of `kind` not in `before` appears (see [`Companion::enroll`]).
    ///
    /// # Errors
    /// [`EnrollError::TimedOut`], [`EnrollError::Cancelled`] or a proxy error.
    pub async fn wait_for_new(
        &self,
        kind: EnrollmentType,
        before: &HashSet<String>,
        options: &EnrollOptions,
    ) -> Result<Authenticator, EnrollError> {
        let deadline = tokio::time::Instant::now() + options.timeout;
        let mut interval = options.first_interval;
        let wanted = kind.method_type();
        loop {
            tokio::select! {
                () = options.cancel.cancelled() => return Err(EnrollError::Cancelled),
                () = tokio::time::sleep_until(deadline) => {
                    return Err(EnrollError::TimedOut { kind, after: options.timeout });
                }
                () = tokio::time::sleep(interval) => {}
            }
            let mut retry_after = None;
            match self.list().await {
                Ok(list) => {
                    if let Some(new) = list
                        .authenticators
                        .into_iter()
                        .find(|a| a.kind == wanted && !before.contains(&a.id))
                    {
                        return Ok(new);
                    }
                }
                // A busy proxy is not a reason to give up the wait, but its Retry-After is honoured.
                Err(ProxyError::Busy {
                    retry_after: wait, ..
                }) => retry_after = wait,
                Err(error) => return Err(error.into()),
            }
            let grown =
                (interval + interval / 2).min(options.max_interval.max(options.first_interval));
            interval = retry_after.map_or(grown, |wait| grown.max(wait));
        }
    }
}
