//! The tenant's JSON Web Key Set: fetched at start-up, cached, refetched for an unknown `kid` at most once per
//! `min_refresh`, refreshed after `max_age`, and kept as it was when a fetch fails.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use companion_mgmt::Clock;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use time::OffsetDateTime;

/// Why a key could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookup {
    /// The key set is loaded but has no key with this `kid` (even after a permitted refetch).
    UnknownKid,
    /// No key set could ever be loaded.
    Unavailable,
}

/// Why a fetch failed (logged, never returned to clients).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksFetchError {
    /// The request failed.
    #[error("jwks request failed")]
    Request(#[source] reqwest::Error),
    /// The endpoint answered with an error status.
    #[error("jwks endpoint answered {0}")]
    Status(u16),
    /// The body is not a key set with at least one usable RSA signing key.
    #[error("jwks document is invalid: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

/// Parses a JWKS document into its RS256 signing keys by `kid`; other keys are skipped.
///
/// # Errors
/// [`JwksFetchError::Invalid`] when the document is not JSON of the JWKS shape or holds no usable key.
pub fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<DecodingKey>>, JwksFetchError> {
    let set: JwkSet =
        serde_json::from_slice(body).map_err(|e| JwksFetchError::Invalid(e.to_string()))?;
    let mut keys = HashMap::new();
    for jwk in set.keys {
        let usable = jwk.kty == "RSA"
            && jwk.usage.as_deref().is_none_or(|u| u == "sig")
            && jwk.alg.as_deref().is_none_or(|a| a == "RS256");
        let (Some(kid), Some(n), Some(e)) = (jwk.kid, jwk.n, jwk.e) else {
            continue;
        };
        if !usable {
            continue;
        }
        match DecodingKey::from_rsa_components(&n, &e) {
            Ok(key) => {
                keys.insert(kid, Arc::new(key));
            }
            Err(error) => tracing::warn!(%kid, %error, "skipping an unusable jwks key"),
        }
    }
    if keys.is_empty() {
        return Err(JwksFetchError::Invalid("no usable RS256 key".to_owned()));
    }
    Ok(keys)
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Arc<DecodingKey>>,
    /// When the current key set was fetched.
    fetched_at: Option<OffsetDateTime>,
    /// When the latest fetch was attempted, successful or not.
    attempted_at: Option<OffsetDateTime>,
    /// Counts attempts, so waiters can tell that someone else just fetched.
    attempts: u64,
}

/// A cached JWKS with rate-limited refetching.
pub struct JwksCache {
    http: reqwest::Client,
    url: String,
    clock: Arc<dyn Clock>,
    min_refresh: Duration,
    max_age: Duration,
    state: RwLock<State>,
    refresh: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
    failures: AtomicU64,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.url)
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

fn elapsed(since: OffsetDateTime, now: OffsetDateTime) -> Duration {
    Duration::try_from(now - since).unwrap_or(Duration::ZERO)
}

impl JwksCache {
    /// A cache of `url`'s keys fetched with `http`.
    pub fn new(
        http: reqwest::Client,
        url: String,
        clock: Arc<dyn Clock>,
        min_refresh: Duration,
        max_age: Duration,
    ) -> Self {
        Self {
            http,
            url,
            clock,
            min_refresh,
            max_age,
            state: RwLock::new(State::default()),
            refresh: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn write<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Fetches the key set now, whatever the rate limit (start-up). On failure the previous set stays.
    ///
    /// # Errors
    /// [`JwksFetchError`] when the fetch failed.
    pub async fn load(&self) -> Result<(), JwksFetchError> {
        let _guard = self.refresh.lock().await;
        self.fetch().await
    }

    /// Whether a key set is loaded.
    pub fn is_loaded(&self) -> bool {
        self.read(|s| !s.keys.is_empty())
    }

    /// Fetch attempts so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Failed fetch attempts so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The key `kid`: from the cache, or after a refetch when the key is unknown or the set is older than
    /// `max_age`, provided the last attempt is at least `min_refresh` old.
    ///
    /// # Errors
    /// [`KeyLookup::UnknownKid`] or [`KeyLookup::Unavailable`].
    pub async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, KeyLookup> {
        let now = self.clock.now_utc();
        let (found, stale, may_fetch, attempts) = self.read(|s| {
            let stale = s
                .fetched_at
                .is_none_or(|at| elapsed(at, now) >= self.max_age);
            let may_fetch = s
                .attempted_at
                .is_none_or(|at| elapsed(at, now) >= self.min_refresh);
            (s.keys.get(kid).cloned(), stale, may_fetch, s.attempts)
        });
        if let Some(key) = &found {
            if !stale || !may_fetch {
                return Ok(key.clone());
            }
            // Known but stale: one task refreshes, the others keep using the cached key meanwhile.
            let Ok(_guard) = self.refresh.try_lock() else {
                return Ok(key.clone());
            };
            if self.read(|s| s.attempts) == attempts
                && let Err(error) = self.fetch().await
            {
                tracing::warn!(error = %crate::error::error_chain(&error), "jwks refresh failed; keeping the last good key set");
            }
        } else if may_fetch {
            let _guard = self.refresh.lock().await;
            // Someone else fetched while we waited: use their result.
            if self.read(|s| s.attempts) == attempts
                && let Err(error) = self.fetch().await
            {
                tracing::warn!(error = %crate::error::error_chain(&error), "jwks refresh failed; keeping the last good key set");
            }
        }
        self.read(|s| match s.keys.get(kid) {
            Some(key) => Ok(key.clone()),
            None if s.keys.is_empty() => Err(KeyLookup::Unavailable),
            None => Err(KeyLookup::UnknownKid),
        })
    }

    /// One fetch; the caller holds `refresh`.
    async fn fetch(&self) -> Result<(), JwksFetchError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.fetch_inner().await;
        let now = self.clock.now_utc();
        self.write(|s| {
            s.attempted_at = Some(now);
            s.attempts += 1;
        });
        match result {
            Ok(keys) => {
                let kids: Vec<&String> = keys.keys().collect();
                tracing::info!(?kids, "jwks loaded");
                self.write(|s| {
                    s.keys = keys;
                    s.fetched_at = Some(now);
                });
                Ok(())
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                Err(error)
            }
        }
    }

    async fn fetch_inner(&self) -> Result<HashMap<String, Arc<DecodingKey>>, JwksFetchError> {
        let response = self
            .http
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| JwksFetchError::Request(e.without_url()))?;
        if !response.status().is_success() {
            return Err(JwksFetchError::Status(response.status().as_u16()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| JwksFetchError::Request(e.without_url()))?;
        parse_jwks(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rs256_signing_keys_are_kept() {
        // A 512-bit modulus is enough to exercise parsing; it never verifies anything here.
        let n = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
        let body = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "good", "use": "sig", "alg": "RS256", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "no-alg", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": n, "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "n": n, "e": "AQAB"}
        ]});
        let keys = parse_jwks(body.to_string().as_bytes()).unwrap();
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(
            kids,
            ["good", "no-alg"],
            "only RSA signature keys for RS256"
        );
    }

    #[test]
    fn documents_without_usable_keys_are_invalid() {
        for body in [
            r#"{"keys": []}"#,
            r#"{"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}"#,
            r#"{"nokeys": 1}"#,
            "<html>",
        ] {
            assert!(
                matches!(parse_jwks(body.as_bytes()), Err(JwksFetchError::Invalid(_))),
                "{body} must be refused"
            );
        }
    }
}
