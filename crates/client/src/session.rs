//! The signed-in session: sign-in (and step-up), access tokens in memory, the refresh token in a [`TokenStore`],
//! rotation-safe refresh, and sign-out.
//!
//! Rules:
//! - Only the refresh token is persisted, through the store. When the keyring is unavailable the session lives in
//!   memory ([`Persistence::MemoryOnly`]) and says so; nothing is ever written to disk in plaintext.
//! - With rotation every refresh returns a new refresh token; it is stored **before** the new access token is used,
//!   so a crash never leaves only a consumed token behind.
//! - A refresh rejected with `invalid_grant` ends the session: the entry is deleted and [`AuthError::SignedOut`] is
//!   returned.
//! - Sign-out revokes the refresh token at the provider and deletes the entry (the entry is deleted even when
//!   revocation fails; the error is still reported).
//! - The browser's page of a sign-in is answered once the tokens are kept (or failed to be: no refresh token, a
//!   keyring error), and written before the sign-in returns, so it always tells the truth and is never cut off.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use openidconnect::{AccessToken, RefreshToken};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::browser::BrowserLauncher;
use crate::clock::Clock;
use crate::config::ClientConfig;
use crate::loopback::{LoopbackListener, Page};
use crate::oidc::{AuthError, Identity, Provider, SignInOptions, TokenSet};
use crate::store::{StoreAccount, StoreError, TokenStore};

/// An access token is refreshed when it has less than this left.
pub const ACCESS_TOKEN_SLACK: Duration = Duration::from_secs(30);

/// Where the refresh token of this session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// In the token store (the OS keyring in the apps): the session survives a restart.
    Stored,
    /// In memory only, because the keyring is unavailable or locked: the session ends with the process.
    MemoryOnly,
}

/// The result of a sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedIn {
    /// Who signed in.
    pub identity: Identity,
    /// Where the refresh token lives.
    pub persistence: Persistence,
}

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Whether a usable session exists.
    pub signed_in: bool,
    /// The user's subject, when signed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Display name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Where the refresh token lives, when signed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,
    /// Whether the keyring was found unavailable in this process.
    pub keyring_available: bool,
    /// The tenant (`auth0_url`).
    pub tenant: String,
}

#[derive(Default)]
struct State {
    access: Option<(AccessToken, Option<SystemTime>)>,
    memory_refresh: Option<RefreshToken>,
    identity: Option<Identity>,
    keyring_unavailable: bool,
}

/// A session against one tenant and client.
pub struct Session {
    config: ClientConfig,
    account: StoreAccount,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    store: Arc<dyn TokenStore>,
    provider: Mutex<Option<Arc<Provider>>>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("account", &self.account)
            .field("store", &self.store.kind())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for `config`, storing the refresh token in `store`.
    ///
    /// # Errors
    /// [`AuthError::Http`] when the HTTP client cannot be built (bad CA file).
    pub fn new(
        config: ClientConfig,
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        let http = crate::http::build_client(config.ca_file.as_deref())?;
        let account = StoreAccount::new(config.tenant(), config.client_id.clone());
        Ok(Self {
            config,
            account,
            http,
            clock,
            store,
            provider: Mutex::new(None),
            state: Mutex::new(State::default()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The keyring account of this session.
    pub fn account(&self) -> &StoreAccount {
        &self.account
    }

    /// The outbound HTTP client (shared with the proxy client).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The discovered provider (discovered on first use, and again after [`Session::rediscover`]).
    ///
    /// # Errors
    /// [`AuthError::Discovery`].
    pub async fn provider(&self) -> Result<Arc<Provider>, AuthError> {
        let mut cached = self.provider.lock().await;
        if let Some(provider) = cached.as_ref() {
            return Ok(provider.clone());
        }
        let provider = Arc::new(
            Provider::discover(&self.config, self.http.clone(), self.clock.clone()).await?,
        );
        *cached = Some(provider.clone());
        Ok(provider)
    }

    /// Forgets the discovered provider, so the next call discovers again (picks up rotated signing keys).
    pub async fn rediscover(&self) {
        self.provider.lock().await.take();
    }

    /// Interactive sign-in on the first free configured loopback port. Use `options.step_up` for step-up.
    ///
    /// # Errors
    /// Any [`AuthError`].
    pub async fn sign_in(
        &self,
        launcher: &dyn BrowserLauncher,
        options: &SignInOptions,
    ) -> Result<SignedIn, AuthError> {
        let listener = LoopbackListener::bind(&self.config.redirect_ports).await?;
        self.sign_in_with(listener, launcher, options).await
    }

    /// Interactive sign-in on an already bound listener.
    ///
    /// # Errors
    /// Any [`AuthError`].
    pub async fn sign_in_with(
        &self,
        listener: LoopbackListener,
        launcher: &dyn BrowserLauncher,
        options: &SignInOptions,
    ) -> Result<SignedIn, AuthError> {
        let provider = self.provider().await?;
        let (tokens, callback) = match provider.sign_in_pending(listener, launcher, options).await {
            Ok(pending) => pending,
            Err(error) => {
                if matches!(error, AuthError::IdToken { .. }) {
                    // Perhaps the tenant rotated its keys since discovery: discover again next time.
                    self.rediscover().await;
                }
                return Err(error);
            }
        };
        let kept = self.keep(tokens).await;
        // The browser's page says what happened, and is written before the caller hears of it.
        callback
            .finish(match &kept {
                Ok(_) => Page::Success,
                Err(error) => Page::failed(&error.page_reason()),
            })
            .await;
        let (signed_in, previous) = kept?;
        // The replaced session is no longer reachable: revoke it rather than leave it valid (best effort).
        if let Some(old) = previous
            && let Err(error) = provider.revoke(&old).await
        {
            tracing::warn!(%error, "could not revoke the replaced refresh token");
        }
        Ok(signed_in)
    }

    /// Keeps the tokens of a sign-in; returns the refresh token it replaced, if any.
    async fn keep(&self, tokens: TokenSet) -> Result<(SignedIn, Option<RefreshToken>), AuthError> {
        let identity = tokens.identity.clone().ok_or(AuthError::MissingIdToken)?;
        let refresh = tokens
            .refresh_token
            .clone()
            .ok_or(AuthError::MissingRefreshToken)?;
        let mut state = self.state.lock().await;
        let previous = self.load_refresh(&mut state).await.ok().flatten();
        let persistence = self.save_refresh(&mut state, refresh).await?;
        state.access = Some((tokens.access_token, tokens.expires_at));
        state.identity = Some(identity.clone());
        Ok((
            SignedIn {
                identity,
                persistence,
            },
            previous.map(|(old, _)| old),
        ))
    }

    async fn store_call<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn TokenStore, &StoreAccount) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        let account = self.account.clone();
        tokio::task::spawn_blocking(move || op(store.as_ref(), &account))
            .await
            .map_err(|join| StoreError::KeyringUnavailable {
                source: Box::new(join),
            })?
    }

    /// Stores the refresh token: in the store, else (keyring unavailable) in memory.
    async fn save_refresh(
        &self,
        state: &mut State,
        refresh: RefreshToken,
    ) -> Result<Persistence, AuthError> {
        let saved = refresh.clone();
        match self
            .store_call(move |store, account| store.save(account, &saved))
            .await
        {
            Ok(()) => {
                state.memory_refresh = None;
                Ok(Persistence::Stored)
            }
            Err(error) if error.is_unavailable() => {
                tracing::warn!(%error, "keyring unavailable: the session stays in memory only");
                state.keyring_unavailable = true;
                state.memory_refresh = Some(refresh);
                Ok(Persistence::MemoryOnly)
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn load_refresh(
        &self,
        state: &mut State,
    ) -> Result<Option<(RefreshToken, Persistence)>, AuthError> {
        if let Some(refresh) = &state.memory_refresh {
            return Ok(Some((refresh.clone(), Persistence::MemoryOnly)));
        }
        match self.store_call(|store, account| store.load(account)).await {
            Ok(found) => Ok(found.map(|rt| (rt, Persistence::Stored))),
            Err(error) if error.is_unavailable() => {
                tracing::warn!(%error, "keyring unavailable: no stored session");
                state.keyring_unavailable = true;
                Ok(None)
            }
            Err(error) => Err(error.into()),
        }
    }

    fn usable(&self, access: &(AccessToken, Option<SystemTime>)) -> bool {
        access
            .1
            .is_none_or(|expires_at| self.clock.now() + ACCESS_TOKEN_SLACK < expires_at)
    }

    /// A valid access token, refreshing (with rotation) when needed.
    ///
    /// # Errors
    /// [`AuthError::SignedOut`] when there is no session or it ended; others when the refresh fails otherwise.
    pub async fn access_token(&self) -> Result<AccessToken, AuthError> {
        let mut state = self.state.lock().await;
        if let Some(access) = &state.access
            && self.usable(access)
        {
            return Ok(access.0.clone());
        }
        self.refresh_locked(&mut state).await
    }

    /// Forces a refresh (e.g. after the proxy rejected the access token).
    ///
    /// # Errors
    /// As [`Session::access_token`].
    pub async fn refresh(&self) -> Result<AccessToken, AuthError> {
        let mut state = self.state.lock().await;
        self.refresh_locked(&mut state).await
    }

    async fn refresh_locked(&self, state: &mut State) -> Result<AccessToken, AuthError> {
        state.access = None;
        let Some((refresh, _)) = self.load_refresh(state).await? else {
            return Err(AuthError::SignedOut);
        };
        let provider = self.provider().await?;
        let tokens: TokenSet = match provider.refresh(&refresh).await {
            Ok(tokens) => tokens,
            Err(error) if error.is_session_ended() => {
                tracing::info!("the refresh token is no longer valid: signing out locally");
                self.forget(state).await?;
                return Err(AuthError::SignedOut);
            }
            Err(error) => return Err(error),
        };
        if let Some(rotated) = tokens.refresh_token {
            // Store the new refresh token before the new access token is used.
            self.save_refresh(state, rotated).await?;
        }
        if tokens.identity.is_some() {
            state.identity = tokens.identity;
        }
        state.access = Some((tokens.access_token.clone(), tokens.expires_at));
        Ok(tokens.access_token)
    }

    /// Who is signed in: from the last ID token, else the userinfo endpoint.
    ///
    /// # Errors
    /// As [`Session::access_token`], or a userinfo failure.
    pub async fn identity(&self) -> Result<Identity, AuthError> {
        let access = self.access_token().await?;
        if let Some(identity) = self.state.lock().await.identity.clone() {
            return Ok(identity);
        }
        let identity = self.provider().await?.userinfo(&access).await?;
        self.state.lock().await.identity = Some(identity.clone());
        Ok(identity)
    }

    /// The session's status; refreshes to prove the session is still alive.
    ///
    /// # Errors
    /// Failures other than "signed out" (which is reported as `signed_in: false`).
    pub async fn status(&self) -> Result<Status, AuthError> {
        let mut status = Status {
            signed_in: false,
            sub: None,
            name: None,
            email: None,
            persistence: None,
            keyring_available: true,
            tenant: self.config.auth0_url.to_string(),
        };
        match self.identity().await {
            Ok(identity) => {
                let state = self.state.lock().await;
                status.signed_in = true;
                status.sub = Some(identity.sub);
                status.name = identity.name;
                status.email = identity.email;
                status.persistence = Some(if state.memory_refresh.is_some() {
                    Persistence::MemoryOnly
                } else {
                    Persistence::Stored
                });
            }
            Err(AuthError::SignedOut) => {}
            Err(error) => return Err(error),
        }
        status.keyring_available = !self.state.lock().await.keyring_unavailable;
        Ok(status)
    }

    /// Signs out: revokes the refresh token, deletes the stored entry, forgets the tokens in memory.
    /// Returns whether there was a session.
    ///
    /// # Errors
    /// [`AuthError::Revoke`] when revocation failed (the local session is gone anyway), or a store failure.
    pub async fn sign_out(&self) -> Result<bool, AuthError> {
        let mut state = self.state.lock().await;
        let refresh = self.load_refresh(&mut state).await?;
        let revoked = match &refresh {
            Some((token, _)) => match self.provider().await {
                Ok(provider) => provider.revoke(token).await,
                Err(error) => Err(error),
            },
            None => Ok(()),
        };
        self.forget(&mut state).await?;
        revoked.map(|()| refresh.is_some())
    }

    async fn forget(&self, state: &mut State) -> Result<(), AuthError> {
        state.access = None;
        state.identity = None;
        state.memory_refresh = None;
        match self
            .store_call(|store, account| store.delete(account))
            .await
        {
            Ok(()) => Ok(()),
            Err(error) if error.is_unavailable() => {
                state.keyring_unavailable = true;
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }
}
