//! OpenID Connect against the tenant with `openidconnect`: discovery, the Authorization Code + PKCE (S256)
//! sign-in through the loopback listener, refresh, revocation.
//!
//! Works with any standards-compliant provider that supports PKCE and loopback redirects. The proxy API is named
//! twice: Auth0's `audience` parameter and the standard RFC 8707 `resource` indicator (on the authorization and
//! every token request; Auth0 uses `audience` when both are present, other providers ignore the unknown
//! `audience`). The issuer is the provider's own spelling, with or without a trailing `/`. Tokens stay in `openidconnect`/`oauth2` types (redacted `Debug`) until the
//! moment of use. Errors never carry a token: token-endpoint failures are reduced to the OAuth error code and
//! description, transport and parse failures to their message.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use companion_protocol::claims::MFA_ACR;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGrantType, CoreIdTokenClaims, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType, CoreTokenResponse,
};
use openidconnect::{
    AccessToken, AdditionalProviderMetadata, AuthenticationContextClass, ClientId, CsrfToken,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, ProviderMetadata, RedirectUrl,
    RefreshToken, RequestTokenError, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::browser::{BrowserLauncher, LaunchError};
use crate::clock::Clock;
use crate::config::ClientConfig;
use crate::loopback::{Callback, IssuerCheck, LoopbackError, LoopbackListener, Page};

/// Scopes of every sign-in: an ID token, the profile for display, and a refresh token.
pub const SCOPES: [&str; 3] = ["profile", "email", "offline_access"];
/// Allowed clock skew when checking `auth_time` against the start of a sign-in with `max_age`.
pub const AUTH_TIME_SKEW: Duration = Duration::from_secs(120);
/// Default time the user has to finish signing in in the browser.
pub const DEFAULT_SIGN_IN_TIMEOUT: Duration = Duration::from_secs(300);

/// Discovery fields `openidconnect`'s core metadata does not model.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraProviderMetadata {
    /// RFC 7009 revocation endpoint (Auth0: `/oauth/revoke`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<Url>,
    /// RFC 9207: the provider puts `iss` in every authorization response (oidc-provider does; Auth0's document
    /// does not say so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}

impl AdditionalProviderMetadata for ExtraProviderMetadata {}

/// The provider metadata type this client uses.
pub type Metadata = ProviderMetadata<
    ExtraProviderMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Why signing in, refreshing or signing out failed. Never carries a token, code or verifier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The outbound HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// Discovery (`/.well-known/openid-configuration` or the JWKS) failed.
    #[error("cannot read the identity provider's configuration from {issuer}: {reason}")]
    Discovery {
        /// The issuer.
        issuer: String,
        /// What failed.
        reason: String,
    },
    /// Waiting for the browser's callback failed (no free port, timeout, cancel, the provider refused).
    #[error(transparent)]
    Loopback(#[from] LoopbackError),
    /// The browser could not be opened.
    #[error(transparent)]
    Browser(#[from] LaunchError),
    /// The token endpoint refused (e.g. `invalid_grant`).
    #[error("the identity provider refused the token request: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    TokenRejected {
        /// The OAuth error code.
        error: String,
        /// The provider's description.
        description: Option<String>,
    },
    /// The token request failed in transport or its response was unusable.
    #[error("the token request failed: {reason}")]
    TokenRequest {
        /// What failed (no response body).
        reason: String,
    },
    /// The response has no ID token although `openid` was requested.
    #[error("the identity provider returned no ID token")]
    MissingIdToken,
    /// The ID token failed verification (signature, issuer, audience, expiry, nonce, `auth_time`).
    #[error("the ID token is invalid: {reason}")]
    IdToken {
        /// What failed.
        reason: String,
    },
    /// The provider sent no refresh token (is `offline_access` allowed for this API?).
    #[error("the identity provider returned no refresh token")]
    MissingRefreshToken,
    /// Not signed in, or the session ended (refresh token expired or revoked).
    #[error("not signed in")]
    SignedOut,
    /// Revocation failed.
    #[error("revoking the refresh token failed: {reason}")]
    Revoke {
        /// What failed.
        reason: String,
    },
    /// The token store failed (other than "unavailable", which falls back to memory).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl AuthError {
    fn from_token_error<RE>(
        error: RequestTokenError<RE, openidconnect::StandardErrorResponse<CoreErrorResponseType>>,
    ) -> Self
    where
        RE: std::error::Error + 'static,
    {
        match error {
            RequestTokenError::ServerResponse(response) => Self::TokenRejected {
                error: response.error().as_ref().to_owned(),
                description: response.error_description().cloned(),
            },
            RequestTokenError::Request(error) => Self::TokenRequest {
                reason: error_chain(&error),
            },
            // The body of an unparsable response may hold tokens: never keep it.
            RequestTokenError::Parse(error, _body) => Self::TokenRequest {
                reason: format!("unreadable response ({})", error.inner()),
            },
            RequestTokenError::Other(reason) => Self::TokenRequest { reason },
        }
    }

    /// A stable machine-readable code for UIs to branch on (never parse messages): `signed_out`, `cancelled`,
    /// `timed_out`, `denied`, `browser`, `keyring`, `no_free_port`, `discovery`, `network` or `sign_in_failed`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SignedOut => "signed_out",
            Self::TokenRejected { error, .. } if error == "invalid_grant" => "signed_out",
            Self::Loopback(LoopbackError::Cancelled) => "cancelled",
            Self::Loopback(LoopbackError::TimedOut { .. }) => "timed_out",
            Self::Loopback(LoopbackError::Denied { .. }) => "denied",
            Self::Loopback(LoopbackError::NoFreePort { .. }) => "no_free_port",
            Self::Browser(_) => "browser",
            Self::Store(_) => "keyring",
            Self::Discovery { .. } => "discovery",
            Self::Http(_) | Self::TokenRequest { .. } | Self::Revoke { .. } => "network",
            _ => "sign_in_failed",
        }
    }

    /// Why the sign-in failed, as shown on the browser's page: a short phrase naming what failed, never a token,
    /// code, provider-supplied text or anything else from a response beyond a well-formed OAuth error code.
    pub fn page_reason(&self) -> String {
        match self {
            Self::TokenRejected { error, .. } => {
                let code_ok = !error.is_empty()
                    && error.len() <= 64
                    && error
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if code_ok {
                    format!("the identity provider refused to issue the tokens ({error})")
                } else {
                    "the identity provider refused to issue the tokens".to_owned()
                }
            }
            Self::TokenRequest { .. } | Self::Http(_) => {
                "the identity provider's token endpoint could not be used".to_owned()
            }
            Self::MissingIdToken => "the identity provider returned no ID token".to_owned(),
            Self::IdToken { .. } => {
                "the identity provider's ID token did not pass the checks".to_owned()
            }
            Self::MissingRefreshToken => {
                "the identity provider returned no refresh token".to_owned()
            }
            Self::Store(_) => "the session could not be saved in the system keyring".to_owned(),
            Self::Loopback(LoopbackError::IssuerMismatch { .. }) => {
                "the response did not come from the expected identity provider".to_owned()
            }
            _ => "the sign-in did not complete".to_owned(),
        }
    }

    /// Whether this means the refresh token is no longer valid (the user must sign in again).
    pub fn is_session_ended(&self) -> bool {
        matches!(self, Self::SignedOut)
            || matches!(self, Self::TokenRejected { error, .. } if error == "invalid_grant")
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Who signed in, from a verified ID token (or the userinfo endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The subject.
    pub sub: String,
    /// Display name, if given.
    #[serde(default)]
    pub name: Option<String>,
    /// Email, if given.
    #[serde(default)]
    pub email: Option<String>,
}

impl Identity {
    fn from_claims(claims: &CoreIdTokenClaims) -> Self {
        Self {
            sub: claims.subject().to_string(),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            email: claims.email().map(|e| e.to_string()),
        }
    }
}

/// Tokens of a sign-in or refresh. `Debug` is redacted by the token types.
#[derive(Debug)]
pub struct TokenSet {
    /// The access token for the proxy API.
    pub access_token: AccessToken,
    /// When it expires (by the provider's `expires_in`), if said.
    pub expires_at: Option<SystemTime>,
    /// The refresh token, if one was issued (with rotation, a new one each time).
    pub refresh_token: Option<RefreshToken>,
    /// Who, when an ID token came with the response.
    pub identity: Option<Identity>,
}

/// Options of one interactive sign-in.
#[derive(Debug, Clone)]
pub struct SignInOptions {
    /// Step-up: `acr_values=<multi-factor>` and `max_age=0`, so the user proves an MFA now.
    pub step_up: bool,
    /// How long to wait for the browser.
    pub timeout: Duration,
    /// Cancels the wait.
    pub cancel: CancellationToken,
}

impl Default for SignInOptions {
    fn default() -> Self {
        Self {
            step_up: false,
            timeout: DEFAULT_SIGN_IN_TIMEOUT,
            cancel: CancellationToken::new(),
        }
    }
}

/// Refuses a discovery document that would send codes or tokens over plain HTTP to a non-loopback host.
fn check_endpoints(metadata: &Metadata) -> Result<(), String> {
    let mut endpoints: Vec<(&str, &Url)> = vec![
        (
            "authorization_endpoint",
            metadata.authorization_endpoint().url(),
        ),
        ("jwks_uri", metadata.jwks_uri().url()),
    ];
    if let Some(token) = metadata.token_endpoint() {
        endpoints.push(("token_endpoint", token.url()));
    }
    if let Some(userinfo) = metadata.userinfo_endpoint() {
        endpoints.push(("userinfo_endpoint", userinfo.url()));
    }
    if let Some(revocation) = &metadata.additional_metadata().revocation_endpoint {
        endpoints.push(("revocation_endpoint", revocation));
    }
    for (name, url) in endpoints {
        let secure = url.scheme() == "https"
            || (url.scheme() == "http" && crate::config::is_loopback_host(url));
        if !secure {
            return Err(format!("{name} {url} is not https"));
        }
    }
    Ok(())
}

/// The RFC 8707 `resource` value for the proxy API: its identifier, when that is an absolute URI without a
/// fragment (RFC 8707 §2). Auth0 API identifiers need not be URIs; those are sent as `audience` only.
fn resource_indicator(audience: &str) -> Option<String> {
    Url::parse(audience)
        .ok()
        .filter(|url| url.fragment().is_none())
        .map(|_| audience.to_owned())
}

/// Why [`discover_at`] failed.
struct DiscoveryFailure {
    reason: String,
    /// The document names another issuer.
    issuer_mismatch: bool,
}

/// OpenID Connect discovery at exactly `issuer`, and its JWKS.
async fn discover_at(issuer: &str, http: &reqwest::Client) -> Result<Metadata, DiscoveryFailure> {
    let issuer = IssuerUrl::new(issuer.to_owned()).map_err(|e| DiscoveryFailure {
        reason: e.to_string(),
        issuer_mismatch: false,
    })?;
    Metadata::discover_async(issuer, http)
        .await
        .map_err(|e| DiscoveryFailure {
            issuer_mismatch: matches!(e, openidconnect::DiscoveryError::Validation(_)),
            reason: error_chain(&e),
        })
}

/// The same issuer URL with its trailing `/` removed, or added when it has none.
fn other_slash_form(issuer: &str) -> String {
    match issuer.strip_suffix('/') {
        Some(bare) => bare.to_owned(),
        None => format!("{issuer}/"),
    }
}

/// The tenant, discovered.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The metadata; its JWKS is replaced when an ID token names a key it lacks (never held across an await).
    metadata: Arc<std::sync::RwLock<Metadata>>,
    client_id: ClientId,
    audience: String,
    /// The RFC 8707 resource indicator: the audience, when it is an absolute URI as RFC 8707 requires.
    resource: Option<String>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl Provider {
    /// Discovers the provider at `config.auth0_url` (the issuer) and loads its JWKS.
    ///
    /// # Errors
    /// [`AuthError::Discovery`].
    pub async fn discover(
        config: &ClientConfig,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        let issuer_text = config.auth0_url.to_string();
        let discovery_error = |reason: String| AuthError::Discovery {
            issuer: issuer_text.clone(),
            reason,
        };
        // The configured URL is normalized (a bare host gains a `/`), while `iss` must match the provider's
        // exactly: Auth0's issuer ends with `/`, most other providers' do not. When the document names the other
        // form of the same URL, that exact string is the issuer (OpenID Connect Discovery 1.0 §4.3 still holds:
        // the document came from that issuer's `.well-known` location).
        let metadata = match discover_at(&issuer_text, &http).await {
            Ok(metadata) => metadata,
            Err(first) if first.issuer_mismatch => {
                discover_at(&other_slash_form(&issuer_text), &http)
                    .await
                    .map_err(|_| discovery_error(first.reason))?
            }
            Err(first) => return Err(discovery_error(first.reason)),
        };
        check_endpoints(&metadata).map_err(discovery_error)?;
        Ok(Self {
            metadata: Arc::new(std::sync::RwLock::new(metadata)),
            client_id: ClientId::new(config.client_id.clone()),
            audience: config.audience.clone(),
            resource: resource_indicator(&config.audience),
            http,
            clock,
        })
    }

    /// How the callback's RFC 9207 `iss` is checked: required when discovery advertises
    /// `authorization_response_iss_parameter_supported`, else compared when present; always against the issuer
    /// exactly as discovered.
    pub fn issuer_check(&self) -> IssuerCheck {
        let metadata = self.read_metadata();
        let issuer = metadata.issuer().as_str().to_owned();
        if metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported
            == Some(true)
        {
            IssuerCheck::Required(issuer)
        } else {
            IssuerCheck::IfPresent(issuer)
        }
    }

    /// The discovered metadata (a snapshot).
    pub fn metadata(&self) -> Metadata {
        self.read_metadata().clone()
    }

    fn read_metadata(&self) -> std::sync::RwLockReadGuard<'_, Metadata> {
        // Readers and writers only clone or replace the value: a poisoned lock still holds a valid one.
        self.metadata
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fetches the JWKS again (the tenant may have rotated its signing keys since discovery).
    async fn refetch_jwks(&self) -> Result<(), AuthError> {
        let uri = self.read_metadata().jwks_uri().clone();
        let jwks = openidconnect::core::CoreJsonWebKeySet::fetch_async(&uri, &self.http)
            .await
            .map_err(|e| AuthError::IdToken {
                reason: format!("cannot fetch the signing keys again: {}", error_chain(&e)),
            })?;
        let mut metadata = self
            .metadata
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *metadata = metadata.clone().set_jwks(jwks);
        Ok(())
    }

    /// Verifies an ID token (signature, `iss`, `aud`, `exp`, the nonce when given, `auth_time` when `max_age`
    /// was sent); on failure fetches the JWKS once more and retries, for keys rotated in since discovery.
    async fn verify_id_token(
        &self,
        id_token: &openidconnect::core::CoreIdToken,
        nonce: Option<&Nonce>,
        max_age: Option<(SystemTime, Duration)>,
    ) -> Result<Identity, AuthError> {
        match self.verify_once(id_token, nonce, max_age) {
            Ok(identity) => Ok(identity),
            Err(first) => {
                if self.refetch_jwks().await.is_err() {
                    return Err(first);
                }
                self.verify_once(id_token, nonce, max_age)
            }
        }
    }

    fn verify_once(
        &self,
        id_token: &openidconnect::core::CoreIdToken,
        nonce: Option<&Nonce>,
        max_age: Option<(SystemTime, Duration)>,
    ) -> Result<Identity, AuthError> {
        let client = self.client();
        let clock = self.clock.clone();
        let mut verifier = client
            .id_token_verifier()
            .set_time_fn(move || DateTime::<Utc>::from(clock.now()));
        if let Some((started, max_age)) = max_age {
            let earliest = DateTime::<Utc>::from(
                started
                    .checked_sub(max_age + AUTH_TIME_SKEW)
                    .unwrap_or(std::time::UNIX_EPOCH),
            );
            verifier = verifier.set_auth_time_verifier_fn(move |auth_time| match auth_time {
                None => Err("auth_time is missing although max_age was sent".to_owned()),
                Some(at) if at < earliest => {
                    Err("auth_time is older than max_age allows".to_owned())
                }
                Some(_) => Ok(()),
            });
        }
        let claims = match nonce {
            Some(nonce) => id_token.claims(&verifier, nonce),
            None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
        }
        .map_err(|e| AuthError::IdToken {
            reason: error_chain(&e),
        })?;
        Ok(Identity::from_claims(claims))
    }

    fn client(
        &self,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(self.metadata(), self.client_id.clone(), None)
    }

    /// Runs the interactive sign-in: opens the authorize URL with `launcher`, waits on `listener` for the
    /// callback, exchanges the code with the PKCE verifier, verifies the ID token (and `auth_time` when step-up
    /// sent `max_age`), and answers the browser's page (written before this returns).
    ///
    /// # Errors
    /// Any [`AuthError`]; the browser's page says the sign-in failed.
    pub async fn sign_in(
        &self,
        listener: LoopbackListener,
        launcher: &dyn BrowserLauncher,
        options: &SignInOptions,
    ) -> Result<TokenSet, AuthError> {
        let (tokens, callback) = self.sign_in_pending(listener, launcher, options).await?;
        callback.finish(Page::Success).await;
        Ok(tokens)
    }

    /// As [`Provider::sign_in`], but the browser's page of a successful exchange is left to the caller, who
    /// answers it with [`Callback::finish`] once the tokens are kept (or failed to be). On error the page has
    /// been answered already (a failure page, finished before this returns).
    ///
    /// # Errors
    /// Any [`AuthError`].
    pub async fn sign_in_pending(
        &self,
        listener: LoopbackListener,
        launcher: &dyn BrowserLauncher,
        options: &SignInOptions,
    ) -> Result<(TokenSet, Callback), AuthError> {
        let redirect =
            RedirectUrl::new(listener.redirect_uri()).map_err(|e| AuthError::TokenRequest {
                reason: format!("bad redirect URI ({e})"),
            })?;
        let client = self.client().set_redirect_uri(redirect);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(SCOPES.iter().map(|s| Scope::new((*s).to_owned())))
            .add_extra_param("audience", self.audience.clone())
            .set_pkce_challenge(challenge);
        if let Some(resource) = &self.resource {
            request = request.add_extra_param("resource", resource.clone());
        }
        let max_age = options.step_up.then_some(Duration::ZERO);
        if let Some(max_age) = max_age {
            request = request
                .add_auth_context_value(AuthenticationContextClass::new(MFA_ACR.to_owned()))
                .set_max_age(max_age);
        }
        let (url, state, nonce) = request.url();
        let started = self.clock.now();
        launcher.open(&url)?;
        let callback = listener
            .wait_for_callback(
                &state,
                &self.issuer_check(),
                options.timeout,
                &options.cancel,
            )
            .await?;
        let result = self
            .exchange(
                &client,
                callback.code.clone(),
                verifier,
                &nonce,
                max_age.map(|age| (started, age)),
            )
            .await;
        match result {
            Ok(tokens) => Ok((tokens, callback)),
            Err(error) => {
                callback.finish(Page::failed(&error.page_reason())).await;
                Err(error)
            }
        }
    }

    async fn exchange(
        &self,
        client: &CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        code: openidconnect::AuthorizationCode,
        verifier: openidconnect::PkceCodeVerifier,
        nonce: &Nonce,
        max_age: Option<(SystemTime, Duration)>,
    ) -> Result<TokenSet, AuthError> {
        let mut request = client
            .exchange_code(code)
            .map_err(|e| AuthError::TokenRequest {
                reason: e.to_string(),
            })?
            .set_pkce_verifier(verifier);
        if let Some(resource) = &self.resource {
            request = request.add_extra_param("resource", resource.clone());
        }
        let response = request
            .request_async(&self.http)
            .await
            .map_err(AuthError::from_token_error)?;
        let id_token = response.id_token().ok_or(AuthError::MissingIdToken)?;
        let identity = self.verify_id_token(id_token, Some(nonce), max_age).await?;
        Ok(self.token_set(&response, Some(identity)))
    }

    fn token_set(&self, response: &CoreTokenResponse, identity: Option<Identity>) -> TokenSet {
        TokenSet {
            access_token: response.access_token().clone(),
            expires_at: response.expires_in().map(|ttl| self.clock.now() + ttl),
            refresh_token: response.refresh_token().cloned(),
            identity,
        }
    }

    /// Exchanges a refresh token. With rotation the result carries a new refresh token, which the caller must
    /// store before using the new access token. An ID token in the response is verified (no nonce); one that
    /// fails verification is dropped rather than failing the refresh (the rotated refresh token must be kept).
    ///
    /// # Errors
    /// [`AuthError::TokenRejected`] (`invalid_grant` when the refresh token is no longer valid), or others.
    pub async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, AuthError> {
        let client = self.client();
        let mut request =
            client
                .exchange_refresh_token(refresh_token)
                .map_err(|e| AuthError::TokenRequest {
                    reason: e.to_string(),
                })?;
        if let Some(resource) = &self.resource {
            request = request.add_extra_param("resource", resource.clone());
        }
        let response = request
            .request_async(&self.http)
            .await
            .map_err(AuthError::from_token_error)?;
        let identity = match response.id_token() {
            // The refresh token was already rotated: failing here would lose the session, so an ID token that
            // does not verify is only dropped; the identity then comes from the sign-in or the userinfo endpoint.
            Some(id_token) => match self.verify_id_token(id_token, None, None).await {
                Ok(identity) => Some(identity),
                Err(error) => {
                    tracing::warn!(%error, "ignoring an unverifiable ID token from a refresh");
                    None
                }
            },
            None => None,
        };
        Ok(self.token_set(&response, identity))
    }

    /// Reads the user's identity from the userinfo endpoint (when a refresh response had no ID token).
    ///
    /// # Errors
    /// [`AuthError::TokenRequest`] when the endpoint is missing or the call fails.
    pub async fn userinfo(&self, access_token: &AccessToken) -> Result<Identity, AuthError> {
        let endpoint = self
            .read_metadata()
            .userinfo_endpoint()
            .cloned()
            .ok_or_else(|| AuthError::TokenRequest {
                reason: "the provider has no userinfo endpoint".to_owned(),
            })?;
        let response = self
            .http
            .get(endpoint.url().clone())
            .bearer_auth(access_token.secret())
            .send()
            .await
            .map_err(|e| AuthError::TokenRequest {
                reason: error_chain(&e),
            })?;
        if !response.status().is_success() {
            return Err(AuthError::TokenRequest {
                reason: format!("userinfo answered {}", response.status()),
            });
        }
        response
            .json::<Identity>()
            .await
            .map_err(|e| AuthError::TokenRequest {
                reason: error_chain(&e),
            })
    }

    /// Revokes a refresh token (RFC 7009) at the discovered `revocation_endpoint`, else `<issuer>/oauth/revoke`.
    ///
    /// # Errors
    /// [`AuthError::Revoke`].
    pub async fn revoke(&self, refresh_token: &RefreshToken) -> Result<(), AuthError> {
        let revocation = self
            .read_metadata()
            .additional_metadata()
            .revocation_endpoint
            .clone();
        let issuer = self.read_metadata().issuer().clone();
        let endpoint = match revocation {
            Some(url) => url,
            None => issuer
                .url()
                .join("oauth/revoke")
                .map_err(|e| AuthError::Revoke {
                    reason: e.to_string(),
                })?,
        };
        let response = self
            .http
            .post(endpoint)
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("token", refresh_token.secret().as_str()),
                ("token_type_hint", "refresh_token"),
            ])
            .send()
            .await
            .map_err(|e| AuthError::Revoke {
                reason: error_chain(&e),
            })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(AuthError::Revoke {
                reason: format!("the revocation endpoint answered {}", response.status()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_sets_do_not_show_tokens_in_debug() {
        let tokens = TokenSet {
            access_token: AccessToken::new("at-secret-value".into()),
            expires_at: None,
            refresh_token: Some(RefreshToken::new("rt-secret-value".into())),
            identity: None,
        };
        let debug = format!("{tokens:?}");
        assert!(
            !debug.contains("at-secret-value") && !debug.contains("rt-secret-value"),
            "{debug}"
        );
    }

    /// A provider answering discovery (naming `issuer(base)` as its issuer, and `base` for its endpoints) and an
    /// empty JWKS, on a loopback port; returns `base`, e.g. `http://127.0.0.1:1234`.
    async fn discovery_server(issuer: fn(&str) -> String) -> String {
        discovery_server_with(issuer, serde_json::json!({})).await
    }

    /// As [`discovery_server`], with `extra` fields merged into the document.
    async fn discovery_server_with(issuer: fn(&str) -> String, extra: serde_json::Value) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut document = serde_json::json!({
            "issuer": issuer(&base),
            "authorization_endpoint": format!("{base}/auth"),
            "token_endpoint": format!("{base}/token"),
            "jwks_uri": format!("{base}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        for (key, value) in extra.as_object().unwrap() {
            document[key] = value.clone();
        }
        let document = document.to_string();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buffer = [0_u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let read = stream.read(&mut buffer).await.unwrap();
                    assert!(read > 0, "request ended early");
                    request.extend_from_slice(&buffer[..read]);
                }
                let body = if request.starts_with(b"GET /.well-known/openid-configuration ") {
                    document.clone()
                } else {
                    r#"{"keys": []}"#.to_owned()
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(response.as_bytes()).await.unwrap();
            }
        });
        base
    }

    async fn discover(auth0_url: &str) -> Result<Provider, AuthError> {
        let config = ClientConfig::for_test(
            Url::parse(auth0_url).unwrap(),
            "client",
            Url::parse("http://127.0.0.1:1").unwrap(),
            vec![1],
        );
        let http = crate::http::build_client(None).unwrap();
        Provider::discover(&config, http, Arc::new(crate::clock::SystemClock)).await
    }

    #[tokio::test]
    async fn discovery_keeps_the_providers_exact_issuer_with_or_without_a_trailing_slash() {
        // Most providers' issuer is the bare origin; the configured URL is normalized to end with `/`.
        let bare = discovery_server(|base| base.to_owned()).await;
        let provider = discover(&bare)
            .await
            .expect("a bare-origin issuer is accepted");
        assert_eq!(
            provider.metadata().issuer().as_str(),
            bare,
            "ID tokens are checked against the provider's own spelling"
        );
        // Auth0's issuer ends with `/`.
        let slashed = discovery_server(|base| format!("{base}/")).await;
        let provider = discover(&slashed).await.expect("Auth0's form is accepted");
        assert_eq!(provider.metadata().issuer().as_str(), format!("{slashed}/"));
    }

    #[tokio::test]
    async fn the_callback_iss_is_required_exactly_when_discovery_advertises_rfc9207() {
        let advertised = discovery_server_with(
            |base| base.to_owned(),
            serde_json::json!({"authorization_response_iss_parameter_supported": true}),
        )
        .await;
        let provider = discover(&advertised).await.expect("discovery");
        assert_eq!(
            provider.issuer_check(),
            IssuerCheck::Required(advertised.clone()),
            "advertised: iss required, compared with the issuer exactly as discovered (no trailing /)"
        );
        let declined = discovery_server_with(
            |base| format!("{base}/"),
            serde_json::json!({"authorization_response_iss_parameter_supported": false}),
        )
        .await;
        assert_eq!(
            discover(&declined).await.expect("discovery").issuer_check(),
            IssuerCheck::IfPresent(format!("{declined}/"))
        );
        let silent = discovery_server(|base| format!("{base}/")).await;
        assert_eq!(
            discover(&silent).await.expect("discovery").issuer_check(),
            IssuerCheck::IfPresent(format!("{silent}/")),
            "not advertised (Auth0): compared when present"
        );
    }

    #[test]
    fn browser_page_reasons_hold_nothing_from_the_response_but_a_well_formed_error_code() {
        let rejected = AuthError::TokenRejected {
            error: "invalid_grant".into(),
            description: Some("<script>secret-ish description</script>".into()),
        };
        assert_eq!(
            rejected.page_reason(),
            "the identity provider refused to issue the tokens (invalid_grant)"
        );
        let odd = AuthError::TokenRejected {
            error: "<b>weird code</b>".into(),
            description: None,
        };
        assert_eq!(
            odd.page_reason(),
            "the identity provider refused to issue the tokens"
        );
        let id_token = AuthError::IdToken {
            reason: "signature of eyJhbGciOi... invalid".into(),
        };
        assert!(!id_token.page_reason().contains("eyJ"));
        let mixed_up = AuthError::Loopback(LoopbackError::IssuerMismatch {
            expected: "https://tenant.example/".into(),
            found: Some("https://attacker.example/".into()),
        });
        assert!(!mixed_up.page_reason().contains("attacker"));
        assert_eq!(mixed_up.code(), "sign_in_failed");
    }

    #[tokio::test]
    async fn discovery_refuses_a_document_naming_another_issuer() {
        let base = discovery_server(|_| "http://127.0.0.1:9/".to_owned()).await;
        let error = discover(&base)
            .await
            .expect_err("another issuer is refused");
        assert!(
            matches!(&error, AuthError::Discovery { reason, .. } if reason.contains("unexpected issuer")),
            "{error}"
        );
    }

    #[test]
    fn the_resource_indicator_is_the_audience_when_it_is_an_absolute_uri() {
        assert_eq!(
            resource_indicator("https://passkey-companion/api").as_deref(),
            Some("https://passkey-companion/api"),
            "sent exactly as configured"
        );
        assert_eq!(
            resource_indicator("urn:passkey-companion:api").as_deref(),
            Some("urn:passkey-companion:api")
        );
        assert_eq!(
            resource_indicator("my-api"),
            None,
            "not a URI: audience only"
        );
        assert_eq!(
            resource_indicator("https://api.example.com/#x"),
            None,
            "RFC 8707 forbids a fragment"
        );
    }

    #[test]
    fn errors_keep_no_response_body() {
        let error = AuthError::TokenRejected {
            error: "invalid_grant".into(),
            description: Some("Unknown or invalid refresh token.".into()),
        };
        assert_eq!(
            error.to_string(),
            "the identity provider refused the token request: invalid_grant (Unknown or invalid refresh token.)"
        );
        assert!(error.is_session_ended());
    }
}
