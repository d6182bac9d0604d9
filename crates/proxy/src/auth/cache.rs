//! A bounded cache of already-verified tokens, keyed by the SHA-256 of the token (the token itself is never
//! stored), each entry valid until the token's `exp`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::VerifiedClaims;

/// Verified tokens by digest.
pub(crate) struct VerifiedCache {
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], Arc<VerifiedClaims>>>,
    hits: AtomicU64,
}

impl VerifiedCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<[u8; 32], Arc<VerifiedClaims>>) -> R) -> R {
        f(&mut self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The claims of a verified token whose `exp` is after `cutoff` (now minus the leeway); expired entries are
    /// dropped.
    pub(crate) fn get(&self, digest: &[u8; 32], cutoff: i64) -> Option<Arc<VerifiedClaims>> {
        let found = self.with(|entries| match entries.get(digest) {
            Some(claims) if claims.exp > cutoff => Some(claims.clone()),
            Some(_) => {
                entries.remove(digest);
                None
            }
            None => None,
        });
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Remembers a verified token. When full, expired entries go first, then arbitrary ones.
    pub(crate) fn insert(&self, digest: [u8; 32], claims: Arc<VerifiedClaims>, cutoff: i64) {
        if self.capacity == 0 {
            return;
        }
        self.with(|entries| {
            if entries.len() >= self.capacity {
                entries.retain(|_, c| c.exp > cutoff);
            }
            while entries.len() >= self.capacity {
                let Some(victim) = entries.keys().next().copied() else {
                    break;
                };
                entries.remove(&victim);
            }
            entries.insert(digest, claims);
        });
    }

    pub(crate) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.with(|entries| entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use companion_protocol::claims::AudienceClaim;

    fn claims(exp: i64) -> Arc<VerifiedClaims> {
        Arc::new(VerifiedClaims {
            iss: "https://t/".into(),
            sub: "auth0|a".into(),
            aud: AudienceClaim::One("api".into()),
            exp,
            nbf: None,
            iat: None,
            azp: None,
            client_id: None,
            auth_time: None,
            mfa_time: None,
        })
    }

    #[test]
    fn entries_expire_with_the_token() {
        let cache = VerifiedCache::new(10);
        cache.insert([1; 32], claims(100), 0);
        assert!(cache.get(&[1; 32], 99).is_some(), "valid before exp");
        assert!(cache.get(&[1; 32], 100).is_none(), "gone at exp");
        assert_eq!(cache.len(), 0, "expired entry removed");
        assert_eq!(cache.hits(), 1);
    }

    #[test]
    fn size_is_bounded() {
        let cache = VerifiedCache::new(3);
        for i in 0..10u8 {
            cache.insert([i; 32], claims(1000), 0);
        }
        assert_eq!(cache.len(), 3, "never more than the capacity");
        assert!(cache.get(&[9; 32], 0).is_some(), "the newest entry is kept");
        cache.insert([20; 32], claims(5), 0);
        cache.insert([21; 32], claims(1000), 10);
        assert!(
            cache.get(&[20; 32], 0).is_none(),
            "expired entries are evicted first"
        );
    }
}
