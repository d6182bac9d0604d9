//! The tenant's state: everything the seeded world defines plus what happens at run time (enrolled methods,
//! tickets, refresh tokens), behind one lock and optionally persisted to a JSON state file.
//!
//! Locks are never held across `.await`: callers pass closures to [`Store::read`] and [`Store::write`].
//! Secrets that outlive a request (refresh tokens, recovery codes, passwords) are stored as SHA-256 digests only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::RwLock;

use companion_protocol::auth0::{AuthenticationMethod, MethodType, TicketFactor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::world::{ApiSeed, ClientGrantSeed, ClientSeed, TenantSettings, World};

/// Hex SHA-256 of `value`, used to keep secrets out of memory dumps and the state file.
pub fn digest(value: &str) -> String {
    let hash = Sha256::digest(value.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Digest of a user's password, salted with the user id.
pub fn password_digest(user_id: &str, password: &str) -> String {
    digest(&format!("{user_id}\u{0}{password}"))
}

/// A user of the tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// `auth0|...`.
    pub user_id: String,
    /// Email, also the login name.
    pub email: String,
    /// Full name.
    pub name: String,
    /// [`password_digest`] of the password.
    pub password_digest: String,
    /// Enrolled methods, in enrollment order.
    pub methods: Vec<StoredMethod>,
}

/// An authentication method as Auth0 shows it, plus the secret the tenant needs to check it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredMethod {
    /// What the Management API returns (masking is applied when it is served).
    pub method: AuthenticationMethod,
    /// What the tenant checks during MFA, if this method can be used for it here.
    pub secret: Option<MethodSecret>,
}

/// The part of a method that is never served.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MethodSecret {
    /// A TOTP secret (base32).
    Totp {
        /// Base32 secret.
        secret_base32: String,
    },
    /// A recovery code, as a [`digest`].
    RecoveryCode {
        /// Digest of the code.
        code_digest: String,
    },
    /// A registered WebAuthn credential as `webauthn-rs` serializes it.
    Webauthn {
        /// The credential (public data only: credential id, public key, counter).
        credential: serde_json::Value,
    },
}

impl std::fmt::Debug for MethodSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Totp { .. } => f.write_str("Totp([redacted])"),
            Self::RecoveryCode { .. } => f.write_str("RecoveryCode([redacted])"),
            Self::Webauthn { .. } => f.write_str("Webauthn(..)"),
        }
    }
}

/// An MFA enrollment ticket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ticket {
    /// The ticket's id (also the secret in its URL).
    pub ticket_id: String,
    /// Who may enroll with it.
    pub user_id: String,
    /// The factor to enroll; `None` lets the user choose.
    pub factor: Option<TicketFactor>,
    /// Whether an already-enrolled user may add a factor.
    pub allow_multiple_enrollments: bool,
    /// Creation, Unix seconds.
    pub created_at: i64,
    /// Expiry, Unix seconds (5 days after creation).
    pub expires_at: i64,
    /// When it was used, if it was.
    pub used_at: Option<i64>,
}

/// A refresh token, stored by the digest of its value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// The rotation family; reuse of a rotated token revokes the whole family.
    pub family: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// The audience of the access tokens it yields.
    pub audience: Option<String>,
    /// Granted scopes.
    pub scope: String,
    /// Unix seconds of the session's authentication.
    pub auth_time: i64,
    /// Unix seconds of the session's latest MFA.
    pub mfa_time: Option<i64>,
    /// Issue time, Unix seconds.
    pub issued_at: i64,
    /// Absolute expiry, Unix seconds (not extended by rotation).
    pub expires_at: i64,
    /// Whether this token was already exchanged (rotated).
    pub rotated: bool,
}

/// Everything the tenant knows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TenantState {
    /// MFA policies and factors.
    pub settings: TenantSettings,
    /// Custom APIs.
    pub apis: Vec<ApiSeed>,
    /// Applications.
    pub clients: Vec<ClientSeed>,
    /// Client grants.
    pub grants: Vec<ClientGrantSeed>,
    /// Users.
    pub users: Vec<User>,
    /// Enrollment tickets by id.
    pub tickets: BTreeMap<String, Ticket>,
    /// Refresh tokens by [`digest`].
    pub refresh_tokens: BTreeMap<String, RefreshRecord>,
    /// Revoked refresh-token families.
    pub revoked_families: BTreeSet<String>,
    /// Configuration objects of the Management API (Actions, bindings, client settings).
    #[serde(default)]
    pub mgmt: crate::mgmt::objects::MgmtObjects,
}

impl TenantState {
    /// The state a world seeds.
    pub fn from_world(world: &World) -> Self {
        let users = world
            .users
            .iter()
            .map(|seed| User {
                user_id: seed.user_id.clone(),
                email: seed.email.clone(),
                name: seed.name.clone(),
                password_digest: password_digest(&seed.user_id, &seed.password),
                methods: seed
                    .methods
                    .iter()
                    .map(|m| {
                        let kind = MethodType::from(m.kind.clone());
                        let secret = if let Some(secret) = &m.totp_secret {
                            Some(MethodSecret::Totp {
                                secret_base32: secret.clone(),
                            })
                        } else {
                            m.recovery_code
                                .as_ref()
                                .map(|code| MethodSecret::RecoveryCode {
                                    code_digest: digest(code),
                                })
                        };
                        StoredMethod {
                            method: AuthenticationMethod {
                                id: m.id.clone(),
                                kind,
                                confirmed: Some(true),
                                name: m.name.clone(),
                                authentication_methods: None,
                                preferred_authentication_method: None,
                                link_id: None,
                                phone_number: m.phone_number.clone(),
                                email: m.email.clone(),
                                key_id: m.key_id.clone(),
                                public_key: m.public_key.clone(),
                                created_at: m.created_at.clone(),
                                enrolled_at: Some(m.created_at.clone()),
                                last_auth_at: m.last_auth_at.clone(),
                                credential_device_type: None,
                                credential_backed_up: None,
                                identity_user_id: None,
                                user_agent: m.user_agent.clone(),
                                user_handle: None,
                                transports: None,
                                aaguid: m.aaguid.clone(),
                                relying_party_identifier: None,
                            },
                            secret,
                        }
                    })
                    .collect(),
            })
            .collect();
        Self {
            settings: world.tenant.clone(),
            apis: world.apis.clone(),
            clients: world.clients.clone(),
            grants: world.client_grants.clone(),
            users,
            ..Self::default()
        }
    }

    /// The user with this id.
    pub fn user(&self, user_id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.user_id == user_id)
    }

    /// The user with this id, mutably.
    pub fn user_mut(&mut self, user_id: &str) -> Option<&mut User> {
        self.users.iter_mut().find(|u| u.user_id == user_id)
    }

    /// The user with this email (case-insensitive).
    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
    }

    /// The client with this id.
    pub fn client(&self, client_id: &str) -> Option<&ClientSeed> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

/// Errors of the state file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The state file exists but cannot be read.
    #[error("cannot read state file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not valid.
    #[error("invalid state file {path}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// The tenant's state behind a lock, written back to the state file after every change when one is set.
#[derive(Debug)]
pub struct Store {
    state: RwLock<TenantState>,
    path: Option<PathBuf>,
}

impl Store {
    /// A store seeded from `world`; when `path` names an existing state file, its content wins.
    ///
    /// # Errors
    /// [`StoreError`] when the state file exists but cannot be read or parsed.
    pub fn open(world: &World, path: Option<PathBuf>) -> Result<Self, StoreError> {
        let state = match &path {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(p).map_err(|source| StoreError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                serde_json::from_str(&text).map_err(|source| StoreError::Parse {
                    path: p.display().to_string(),
                    source,
                })?
            }
            _ => TenantState::from_world(world),
        };
        let store = Self {
            state: RwLock::new(state),
            path,
        };
        store.persist();
        Ok(store)
    }

    /// Runs `f` with shared access to the state.
    pub fn read<R>(&self, f: impl FnOnce(&TenantState) -> R) -> R {
        let guard = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&guard)
    }

    /// Runs `f` with exclusive access to the state, then writes the state file.
    pub fn write<R>(&self, f: impl FnOnce(&mut TenantState) -> R) -> R {
        let result = {
            let mut guard = self
                .state
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        };
        self.persist();
        result
    }

    /// Writes the state file atomically (temporary file, then rename); failures are logged, not fatal.
    fn persist(&self) {
        let Some(path) = &self.path else { return };
        let text = self.read(serde_json::to_string_pretty);
        let text = match text {
            Ok(text) => text,
            Err(error) => {
                tracing::error!(%error, "cannot serialize the tenant state");
                return;
            }
        };
        let tmp = path.with_extension("tmp");
        if let Err(error) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)) {
            tracing::error!(%error, path = %path.display(), "cannot write the state file");
        }
    }
}
