//! Where the refresh token lives between runs: the [`TokenStore`] trait, the OS keyring ([`KeyringStore`]) and
//! memory ([`MemoryStore`]).
//!
//! Only the refresh token is stored; access tokens stay in memory. Entries are keyed by service
//! [`KEYRING_SERVICE`] and account `<tenant>/<client_id>` ([`StoreAccount`]), so a demo session never collides with
//! a real one. When the keyring is unavailable or locked the store says so with
//! [`StoreError::KeyringUnavailable`]; callers fall back to a memory-only session, never to a file.
//!
//! The methods block (the Secret Service backend talks D-Bus synchronously): async callers use
//! `tokio::task::spawn_blocking`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use openidconnect::RefreshToken;

/// The keyring service name of every entry.
pub const KEYRING_SERVICE: &str = "passkey-companion";

/// Which entry: one per tenant and client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreAccount {
    /// The tenant (host, plus `:port` when not the default).
    pub tenant: String,
    /// The public client id.
    pub client_id: String,
}

impl StoreAccount {
    /// An account.
    pub fn new(tenant: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            client_id: client_id.into(),
        }
    }

    /// The keyring account name, `<tenant>/<client_id>`.
    pub fn account_name(&self) -> String {
        format!("{}/{}", self.tenant, self.client_id)
    }
}

impl fmt::Display for StoreAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.account_name())
    }
}

/// Why the store failed. Never carries a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No keyring service, or it is locked: the session can only live in memory.
    #[error("the system keyring is unavailable or locked")]
    KeyringUnavailable {
        /// The platform's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The stored entry is not a valid token (its content is not shown).
    #[error("the keyring entry for {account} is not a valid token")]
    Corrupt {
        /// The entry's account name.
        account: String,
    },
    /// Any other keyring failure.
    #[error("keyring operation failed for {account}")]
    Keyring {
        /// The entry's account name.
        account: String,
        /// The keyring's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// Whether this means "no keyring here" (fall back to a memory-only session).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::KeyringUnavailable { .. })
    }
}

/// A place for the refresh token.
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The stored refresh token, or `None` when there is none.
    ///
    /// # Errors
    /// [`StoreError`].
    fn load(&self, account: &StoreAccount) -> Result<Option<RefreshToken>, StoreError>;

    /// Stores (replaces) the refresh token.
    ///
    /// # Errors
    /// [`StoreError`].
    fn save(&self, account: &StoreAccount, token: &RefreshToken) -> Result<(), StoreError>;

    /// Removes the entry; removing an absent entry succeeds.
    ///
    /// # Errors
    /// [`StoreError`].
    fn delete(&self, account: &StoreAccount) -> Result<(), StoreError>;

    /// A short name for messages: `keyring` or `memory`.
    fn kind(&self) -> &'static str;
}

/// The OS keyring: Secret Service on Linux, Keychain on macOS, Credential Manager on Windows.
#[derive(Debug, Clone)]
pub struct KeyringStore {
    service: String,
}

impl Default for KeyringStore {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyringStore {
    /// A store under [`KEYRING_SERVICE`].
    pub fn new() -> Self {
        Self::with_service(KEYRING_SERVICE)
    }

    /// A store under another service name (tests use a unique one).
    pub fn with_service(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
        }
    }

    fn entry(&self, account: &StoreAccount) -> Result<keyring::Entry, StoreError> {
        keyring::Entry::new(&self.service, &account.account_name())
            .map_err(|e| map_error(e, account))
    }
}

fn map_error(error: keyring::Error, account: &StoreAccount) -> StoreError {
    match error {
        keyring::Error::PlatformFailure(source) | keyring::Error::NoStorageAccess(source) => {
            StoreError::KeyringUnavailable { source }
        }
        // The bytes in `BadEncoding` are the stored secret: drop them.
        keyring::Error::BadEncoding(_) => StoreError::Corrupt {
            account: account.account_name(),
        },
        other => StoreError::Keyring {
            account: account.account_name(),
            source: Box::new(other),
        },
    }
}

impl TokenStore for KeyringStore {
    fn load(&self, account: &StoreAccount) -> Result<Option<RefreshToken>, StoreError> {
        match self.entry(account)?.get_password() {
            Ok(secret) if secret.is_empty() => Err(StoreError::Corrupt {
                account: account.account_name(),
            }),
            Ok(secret) => Ok(Some(RefreshToken::new(secret))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(error) => Err(map_error(error, account)),
        }
    }

    fn save(&self, account: &StoreAccount, token: &RefreshToken) -> Result<(), StoreError> {
        self.entry(account)?
            .set_password(token.secret())
            .map_err(|e| map_error(e, account))
    }

    fn delete(&self, account: &StoreAccount) -> Result<(), StoreError> {
        match self.entry(account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(error) => Err(map_error(error, account)),
        }
    }

    fn kind(&self) -> &'static str {
        "keyring"
    }
}

/// Tokens in memory only: tests, headless CI, and the fallback when the keyring is unavailable.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<StoreAccount, RefreshToken>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StoreAccount, RefreshToken>> {
        // A panic while holding this lock cannot leave the map half-updated: recover the guard.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.lock().len())
            .finish()
    }
}

impl TokenStore for MemoryStore {
    fn load(&self, account: &StoreAccount) -> Result<Option<RefreshToken>, StoreError> {
        Ok(self.lock().get(account).cloned())
    }

    fn save(&self, account: &StoreAccount, token: &RefreshToken) -> Result<(), StoreError> {
        self.lock().insert(account.clone(), token.clone());
        Ok(())
    }

    fn delete(&self, account: &StoreAccount) -> Result<(), StoreError> {
        self.lock().remove(account);
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_debug_is_redacted() {
        let store = MemoryStore::new();
        let account = StoreAccount::new("t", "c");
        store
            .save(&account, &RefreshToken::new("rt-super-secret".into()))
            .unwrap();
        let debug = format!("{store:?}");
        assert!(!debug.contains("rt-super-secret"), "{debug}");
        let token = store.load(&account).unwrap().unwrap();
        assert!(!format!("{token:?}").contains("rt-super-secret"));
    }

    #[test]
    fn bad_encoding_drops_the_bytes() {
        let account = StoreAccount::new("t", "c");
        let error = map_error(
            keyring::Error::BadEncoding(b"secret-bytes".to_vec()),
            &account,
        );
        let text = format!("{error} {error:?}");
        assert!(!text.contains("secret-bytes"), "{text}");
        assert!(
            !text.contains("115, 101, 99"),
            "no raw bytes either: {text}"
        );
        assert!(matches!(error, StoreError::Corrupt { .. }));
    }
}
