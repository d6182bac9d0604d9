//! WebAuthn ceremonies with `webauthn-rs`: registration for enrollment tickets and assertion for MFA challenges.
//!
//! Ceremony state never leaves the server: [`Ceremonies`] keeps it in memory, keyed by a random single-use id,
//! expiring after [`CEREMONY_TTL_SECONDS`] of tenant time. The browser only ever sees the options (challenge,
//! relying party, allowed credentials) and the id.
//!
//! Which `webauthn-rs` API, deliberately:
//! - `webauthn-platform` (device biometrics) registers through the *passkey* API: user verification is
//!   required, and the options ask for a `platform` authenticator.
//! - `webauthn-roaming` (a security key used as a second factor) registers through the *security-key* API: user
//!   verification is only "preferred", so presence-only keys (no PIN, no biometrics) enroll and work, as Auth0
//!   accepts them for MFA; the options ask for a `cross-platform` authenticator.
//! - MFA assertions run one security-key ceremony over all the user's stored credentials. `webauthn-rs` still
//!   enforces user verification for credentials registered with "required" (the platform ones), so a platform
//!   credential never passes on presence alone.
//!
//! Both `Passkey` and `SecurityKey` serialize as `{"cred": <Credential>}`; the stored
//! [`MethodSecret::Webauthn`] value is that JSON, read back as a `SecurityKey` for assertions (a unit test pins
//! this).

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use url::Url;
use webauthn_rs::prelude::{
    AuthenticatorAttachment, CredentialID, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, SecurityKey, SecurityKeyAuthentication, SecurityKeyRegistration,
    Uuid, Webauthn, WebauthnBuilder,
};

mod attestation;
#[cfg(test)]
pub(crate) mod soft;

use crate::clock::auth0_timestamp;
use crate::pages::escape;
use crate::store::{MethodSecret, Store, User};
use attestation::{attested_credential_data, auth_data};
use companion_protocol::auth0::MethodType;

/// How long a started ceremony may be finished, in seconds of tenant time (the browser's timeout too).
pub const CEREMONY_TTL_SECONDS: i64 = 300;

/// At most this many ceremonies wait at once; beyond that new ones are refused until some expire.
const MAX_PENDING: usize = 10_000;

/// Why a ceremony could not start or finish. The `Display` text is safe to show on a page.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebauthnError {
    /// The tenant's base URL cannot be a WebAuthn origin (it must be a domain such as `localhost`).
    #[error("WebAuthn is not available on this tenant's address")]
    Unavailable,
    /// Too many ceremonies in progress.
    #[error("too many sign-in attempts in progress; try again in a few minutes")]
    Busy,
    /// The ceremony id is unknown, already finished, or expired.
    #[error("this request expired or was already used; start again")]
    UnknownCeremony,
    /// The ceremony was started for another user, ticket or purpose.
    #[error("this request does not belong to this sign-in")]
    Mismatch,
    /// The browser's answer is not a WebAuthn credential.
    #[error("the browser sent an invalid credential")]
    InvalidCredential,
    /// `webauthn-rs` refused the ceremony (bad signature, wrong origin, user not verified, ...).
    #[error("the security key or device was not accepted ({0})")]
    Rejected(String),
    /// The user does not exist (any more).
    #[error("the user does not exist")]
    UnknownUser,
    /// The credential is already registered.
    #[error("this security key or device is already registered")]
    AlreadyRegistered,
    /// The credential used is not one of the user's.
    #[error("this security key or device is not registered for this user")]
    UnknownCredential,
}

/// Which kind of authenticator a registration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    /// This device's built-in authenticator (`webauthn-platform`): user verification required.
    Platform,
    /// A roaming security key (`webauthn-roaming`): user presence is enough.
    CrossPlatform,
}

impl Attachment {
    /// The Management API method type a credential of this kind is stored as.
    pub fn method_type(self) -> MethodType {
        match self {
            Self::Platform => MethodType::WebauthnPlatform,
            Self::CrossPlatform => MethodType::WebauthnRoaming,
        }
    }

    /// The method type's string, e.g. `webauthn-roaming`.
    pub fn type_str(self) -> &'static str {
        match self {
            Self::Platform => "webauthn-platform",
            Self::CrossPlatform => "webauthn-roaming",
        }
    }
}

/// A started registration: the options to hand to `navigator.credentials.create`.
#[derive(Debug, Clone)]
pub struct RegistrationChallenge {
    /// The single-use ceremony id, posted back with the credential.
    pub ceremony: String,
    /// `CredentialCreationOptions` as JSON (binary fields base64url), escaped for an inline `<script>`.
    pub options_script_json: String,
}

/// A verified new credential, ready to store as a method.
#[derive(Debug, Clone)]
pub struct RegisteredCredential {
    /// The kind of authenticator the ceremony registered (from its server-side state, not the browser).
    pub attachment: Attachment,
    /// The credential id, base64url without padding (Auth0's `key_id`).
    pub key_id: String,
    /// The credential's COSE public key, standard base64 (Auth0's `public_key`).
    pub public_key: String,
    /// The authenticator's AAGUID, when it gave a non-zero one.
    pub aaguid: Option<String>,
    /// Transports the browser reported, if any.
    pub transports: Option<Vec<String>>,
    /// What to store as [`MethodSecret::Webauthn`].
    pub credential: serde_json::Value,
    /// The RP ID it is bound to (`localhost`), Auth0's `relying_party_identifier`.
    pub relying_party_identifier: String,
}

/// A started MFA assertion for one user: render [`Challenge::html`] on the MFA page.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The single-use ceremony id (also posted by the fragment in the `ceremony` field).
    pub ceremony: String,
    options_script_json: String,
}

impl Challenge {
    /// An HTML fragment: a button that runs `navigator.credentials.get` with this challenge's options, then
    /// POSTs a form (`application/x-www-form-urlencoded`) to `action` with fields `ceremony` (the id),
    /// `credential` (the browser's answer as JSON) and every `(name, value)` of `hidden`. All values are
    /// escaped. Errors in the browser (cancelled, no key) are shown beside the button, which then retries.
    pub fn html(&self, action: &str, hidden: &[(&str, &str)]) -> String {
        let suffix = &self.ceremony[..self.ceremony.len().min(8)];
        let mut fields = String::new();
        for (name, value) in hidden {
            fields.push_str(&format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                escape(name),
                escape(value)
            ));
        }
        format!(
            r#"<form method="post" action="{action}" id="wa-form-{suffix}">
<input type="hidden" name="ceremony" value="{ceremony}">
<input type="hidden" name="credential" value="">
{fields}
<button type="button" id="wa-button-{suffix}" data-webauthn="get">Use your security key or this device</button>
<p class="error" role="alert" id="wa-error-{suffix}" hidden></p>
</form>
<script>
{helpers}
(() => {{
  const options = {options};
  const form = document.getElementById("wa-form-{suffix}");
  const button = document.getElementById("wa-button-{suffix}");
  const error = document.getElementById("wa-error-{suffix}");
  button.addEventListener("click", async () => {{
    error.hidden = true;
    if (!window.PublicKeyCredential) {{
      error.textContent = "This browser does not support security keys or passkeys.";
      error.hidden = false;
      return;
    }}
    button.disabled = true;
    try {{
      const pk = options.publicKey;
      const publicKey = Object.assign({{}}, pk, {{
        challenge: waFromB64u(pk.challenge),
        allowCredentials: (pk.allowCredentials || []).map((c) => Object.assign({{}}, c, {{ id: waFromB64u(c.id) }})),
      }});
      const cred = await navigator.credentials.get({{ publicKey }});
      const r = cred.response;
      form.elements.credential.value = JSON.stringify({{
        id: cred.id,
        rawId: waToB64u(cred.rawId),
        type: cred.type,
        response: {{
          authenticatorData: waToB64u(r.authenticatorData),
          clientDataJSON: waToB64u(r.clientDataJSON),
          signature: waToB64u(r.signature),
          userHandle: r.userHandle ? waToB64u(r.userHandle) : null,
        }},
        extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {{}},
      }});
      form.submit();
    }} catch (e) {{
      error.textContent = "The security key or device did not answer (" + e.name + "). Try again.";
      error.hidden = false;
      button.disabled = false;
    }}
  }});
}})();
</script>"#,
            action = escape(action),
            ceremony = escape(&self.ceremony),
            helpers = JS_HELPERS,
            options = self.options_script_json,
        )
    }
}

/// Base64url helpers shared by the registration and assertion scripts.
pub const JS_HELPERS: &str = r#"function waFromB64u(s) {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (s.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
}
function waToB64u(buf) {
  let s = "";
  for (const b of new Uint8Array(buf)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}"#;

enum RegistrationState {
    Platform(PasskeyRegistration),
    CrossPlatform(SecurityKeyRegistration),
}

enum PendingKind {
    Registration {
        ticket_id: String,
        user_id: String,
        state: RegistrationState,
    },
    Authentication {
        user_id: String,
        state: SecurityKeyAuthentication,
    },
}

struct Pending {
    expires_at: i64,
    kind: PendingKind,
}

/// Ceremonies in progress, keyed by a single-use id.
pub struct Ceremonies {
    origin: String,
    rp_id: String,
    webauthn: Option<Webauthn>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl std::fmt::Debug for Ceremonies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ceremonies")
            .field("origin", &self.origin)
            .field("available", &self.webauthn.is_some())
            .finish_non_exhaustive()
    }
}

impl Ceremonies {
    /// Ceremonies for pages served at `base_url`: the origin is exactly `base_url` (port included) and the RP
    /// ID its host (`localhost`). An IP-address base URL cannot do WebAuthn; every ceremony then fails with
    /// [`WebauthnError::Unavailable`].
    pub fn new(base_url: &str) -> Self {
        let webauthn = Url::parse(base_url).ok().and_then(|origin| {
            let rp_id = origin.domain()?.to_owned();
            let built = WebauthnBuilder::new(&rp_id, &origin)
                .map(|b| {
                    b.rp_name("Passkey Companion dev tenant").timeout(
                        std::time::Duration::from_secs(CEREMONY_TTL_SECONDS.unsigned_abs()),
                    )
                })
                .and_then(WebauthnBuilder::build);
            match built {
                Ok(webauthn) => Some(webauthn),
                Err(error) => {
                    tracing::warn!(%error, %base_url, "WebAuthn unavailable on this base URL");
                    None
                }
            }
        });
        let rp_id = Url::parse(base_url)
            .ok()
            .and_then(|url| url.domain().map(str::to_owned))
            .unwrap_or_default();
        Self {
            origin: base_url.trim_end_matches('/').to_owned(),
            rp_id,
            webauthn,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// The origin pages are served from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// How many ceremonies are waiting (expired ones included until the next start purges them).
    pub fn pending_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn webauthn(&self) -> Result<&Webauthn, WebauthnError> {
        self.webauthn.as_ref().ok_or(WebauthnError::Unavailable)
    }

    fn insert(&self, kind: PendingKind, now: OffsetDateTime) -> Result<String, WebauthnError> {
        let now = now.unix_timestamp();
        let id = random_alphanumeric(32);
        let mut pending = self.lock();
        pending.retain(|_, p| p.expires_at > now);
        if pending.len() >= MAX_PENDING {
            return Err(WebauthnError::Busy);
        }
        pending.insert(
            id.clone(),
            Pending {
                expires_at: now + CEREMONY_TTL_SECONDS,
                kind,
            },
        );
        Ok(id)
    }

    /// Removes and returns the ceremony `id` if it exists and has not expired (single use either way).
    fn take(&self, id: &str, now: OffsetDateTime) -> Result<PendingKind, WebauthnError> {
        let pending = self
            .lock()
            .remove(id)
            .ok_or(WebauthnError::UnknownCeremony)?;
        if pending.expires_at <= now.unix_timestamp() {
            return Err(WebauthnError::UnknownCeremony);
        }
        Ok(pending.kind)
    }

    /// Starts registering a new credential for `user` under enrollment ticket `ticket_id`.
    ///
    /// The user's already-registered WebAuthn credentials are excluded, so the same key cannot enroll twice.
    ///
    /// # Errors
    /// [`WebauthnError::Unavailable`], [`WebauthnError::Busy`], or [`WebauthnError::Rejected`] when
    /// `webauthn-rs` cannot build the options.
    pub fn start_registration(
        &self,
        user: &User,
        ticket_id: &str,
        attachment: Attachment,
        now: OffsetDateTime,
    ) -> Result<RegistrationChallenge, WebauthnError> {
        let webauthn = self.webauthn()?;
        let exclude = Some(registered_credential_ids(user));
        let uuid = user_uuid(&user.user_id);
        let (options, state) = match attachment {
            Attachment::Platform => {
                let (mut ccr, state) = webauthn
                    .start_passkey_registration(uuid, &user.email, &user.name, exclude)
                    .map_err(rejected)?;
                if let Some(selection) = ccr.public_key.authenticator_selection.as_mut() {
                    selection.authenticator_attachment = Some(AuthenticatorAttachment::Platform);
                }
                (
                    serde_json::to_value(&ccr),
                    RegistrationState::Platform(state),
                )
            }
            Attachment::CrossPlatform => {
                let (mut ccr, state) = webauthn
                    .start_securitykey_registration(
                        uuid,
                        &user.email,
                        &user.name,
                        exclude,
                        None,
                        Some(AuthenticatorAttachment::CrossPlatform),
                    )
                    .map_err(rejected)?;
                // webauthn-rs asks for credProtect "userVerificationRequired" (not enforced) with
                // userVerification "preferred"; Chromium refuses that pair (NotSupportedError), and on a key
                // without UV it would make the credential unusable anyway. Presence-only keys must work, so the
                // extension is not sent; webauthn-rs then records it as "Ignored".
                if let Some(extensions) = ccr.public_key.extensions.as_mut() {
                    extensions.cred_protect = None;
                }
                (
                    serde_json::to_value(&ccr),
                    RegistrationState::CrossPlatform(state),
                )
            }
        };
        let options = options.map_err(|_| WebauthnError::Rejected("options".to_owned()))?;
        let ceremony = self.insert(
            PendingKind::Registration {
                ticket_id: ticket_id.to_owned(),
                user_id: user.user_id.clone(),
                state,
            },
            now,
        )?;
        Ok(RegistrationChallenge {
            ceremony,
            options_script_json: script_json(&options),
        })
    }

    /// Finishes registration `ceremony` (single use) for `ticket_id` and `user_id` with the browser's
    /// `credential_json` (`RegisterPublicKeyCredential`, binary fields base64url).
    ///
    /// Storing the result and consuming the ticket is the caller's job (atomically, in one `Store::write`).
    ///
    /// # Errors
    /// [`WebauthnError::UnknownCeremony`] (unknown, used, expired), [`WebauthnError::Mismatch`] (another
    /// ticket or user), [`WebauthnError::InvalidCredential`] or [`WebauthnError::Rejected`].
    pub fn finish_registration(
        &self,
        ceremony: &str,
        ticket_id: &str,
        user_id: &str,
        credential_json: &str,
        now: OffsetDateTime,
    ) -> Result<RegisteredCredential, WebauthnError> {
        let webauthn = self.webauthn()?;
        let PendingKind::Registration {
            ticket_id: expected_ticket,
            user_id: expected_user,
            state,
        } = self.take(ceremony, now)?
        else {
            return Err(WebauthnError::Mismatch);
        };
        if expected_ticket != ticket_id || expected_user != user_id {
            return Err(WebauthnError::Mismatch);
        }
        let raw: serde_json::Value =
            serde_json::from_str(credential_json).map_err(|_| WebauthnError::InvalidCredential)?;
        let reg: RegisterPublicKeyCredential =
            serde_json::from_value(raw.clone()).map_err(|_| WebauthnError::InvalidCredential)?;
        let (credential, cred_id) = match &state {
            RegistrationState::Platform(state) => {
                let passkey = webauthn
                    .finish_passkey_registration(&reg, state)
                    .map_err(rejected)?;
                (serde_json::to_value(&passkey), passkey.cred_id().clone())
            }
            RegistrationState::CrossPlatform(state) => {
                let key = webauthn
                    .finish_securitykey_registration(&reg, state)
                    .map_err(rejected)?;
                (serde_json::to_value(&key), key.cred_id().clone())
            }
        };
        let credential = credential.map_err(|_| WebauthnError::InvalidCredential)?;
        // webauthn-rs verified the attestation object; read the AAGUID and COSE key bytes from it.
        let attested = auth_data(&reg.response.attestation_object)
            .and_then(attested_credential_data)
            .filter(|a| a.credential_id == cred_id.as_slice())
            .ok_or(WebauthnError::InvalidCredential)?;
        let aaguid = (attested.aaguid != [0; 16])
            .then(|| Uuid::from_bytes(attested.aaguid).hyphenated().to_string());
        let transports = raw
            .pointer("/response/transports")
            .and_then(serde_json::Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(serde_json::Value::as_str)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|list| !list.is_empty());
        let attachment = match state {
            RegistrationState::Platform(_) => Attachment::Platform,
            RegistrationState::CrossPlatform(_) => Attachment::CrossPlatform,
        };
        Ok(RegisteredCredential {
            attachment,
            key_id: URL_SAFE_NO_PAD.encode(&cred_id),
            public_key: STANDARD.encode(attested.cose_key),
            aaguid,
            transports,
            credential,
            relying_party_identifier: self.rp_id.clone(),
        })
    }

    /// Starts a WebAuthn MFA assertion for `user` over every stored credential with a
    /// [`MethodSecret::Webauthn`] (seeded demo methods without one cannot be used).
    ///
    /// Returns `Ok(None)` when the user has no usable WebAuthn credential: do not offer the option then.
    /// Render [`Challenge::html`] with your form action and hidden fields; when it posts back, call
    /// [`Ceremonies::finish_authentication`] with the posted `ceremony` and `credential` fields.
    ///
    /// # Errors
    /// [`WebauthnError::Unavailable`], [`WebauthnError::Busy`], or [`WebauthnError::Rejected`].
    pub fn start_authentication(
        &self,
        user: &User,
        now: OffsetDateTime,
    ) -> Result<Option<Challenge>, WebauthnError> {
        let webauthn = self.webauthn()?;
        let keys = stored_keys(user);
        if keys.is_empty() {
            return Ok(None);
        }
        let keys: Vec<SecurityKey> = keys.into_iter().map(|(_, key)| key).collect();
        let (mut rcr, state) = webauthn
            .start_securitykey_authentication(&keys)
            .map_err(rejected)?;
        // The security-key API hints "security-key", which steers browsers away from this device's own
        // authenticator; the user's credentials may be platform ones too, so let the browser choose.
        rcr.public_key.hints = None;
        let options = serde_json::to_value(&rcr)
            .map_err(|_| WebauthnError::Rejected("options".to_owned()))?;
        let ceremony = self.insert(
            PendingKind::Authentication {
                user_id: user.user_id.clone(),
                state,
            },
            now,
        )?;
        Ok(Some(Challenge {
            ceremony,
            options_script_json: script_json(&options),
        }))
    }

    /// Finishes MFA assertion `ceremony` (single use, must have been started for `user_id`) with the posted
    /// `credential_json`. On success updates the credential's stored counter and the method's `last_auth_at`
    /// (tenant time `now`) in `store`, and returns the method's id (e.g. `webauthn-roaming|dev_...`).
    ///
    /// # Errors
    /// [`WebauthnError::UnknownCeremony`] (unknown, used or expired: start a new challenge),
    /// [`WebauthnError::Mismatch`] (started for another user), [`WebauthnError::InvalidCredential`],
    /// [`WebauthnError::Rejected`] (bad signature, user not verified, ...), [`WebauthnError::UnknownUser`],
    /// [`WebauthnError::UnknownCredential`] (the method was deleted meanwhile).
    pub fn finish_authentication(
        &self,
        store: &Store,
        user_id: &str,
        ceremony: &str,
        credential_json: &str,
        now: OffsetDateTime,
    ) -> Result<String, WebauthnError> {
        let webauthn = self.webauthn()?;
        let PendingKind::Authentication {
            user_id: expected_user,
            state,
        } = self.take(ceremony, now)?
        else {
            return Err(WebauthnError::Mismatch);
        };
        if expected_user != user_id {
            return Err(WebauthnError::Mismatch);
        }
        let response: PublicKeyCredential =
            serde_json::from_str(credential_json).map_err(|_| WebauthnError::InvalidCredential)?;
        let result = webauthn
            .finish_securitykey_authentication(&response, &state)
            .map_err(rejected)?;
        store.write(|s| {
            let user = s.user_mut(user_id).ok_or(WebauthnError::UnknownUser)?;
            for stored in &mut user.methods {
                let Some(MethodSecret::Webauthn { credential }) = &mut stored.secret else {
                    continue;
                };
                let Ok(mut key) = serde_json::from_value::<SecurityKey>(credential.clone()) else {
                    continue;
                };
                if key.cred_id() != result.cred_id() {
                    continue;
                }
                key.update_credential(&result);
                if let Ok(updated) = serde_json::to_value(&key) {
                    *credential = updated;
                }
                stored.method.last_auth_at = Some(auth0_timestamp(now));
                return Ok(stored.method.id.clone());
            }
            Err(WebauthnError::UnknownCredential)
        })
    }
}

#[allow(clippy::needless_pass_by_value)] // Shaped for `map_err(rejected)`.
fn rejected(error: webauthn_rs::prelude::WebauthnError) -> WebauthnError {
    WebauthnError::Rejected(error.to_string())
}

/// `len` random ASCII letters and digits.
pub fn random_alphanumeric(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A stable WebAuthn user handle for a tenant user id (the first 16 bytes of its SHA-256).
fn user_uuid(user_id: &str) -> Uuid {
    let hash = Sha256::digest(user_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    Uuid::from_bytes(bytes)
}

/// The user's WebAuthn credentials `webauthn-rs` can assert, with their method ids.
fn stored_keys(user: &User) -> Vec<(String, SecurityKey)> {
    user.methods
        .iter()
        .filter_map(|m| match &m.secret {
            Some(MethodSecret::Webauthn { credential }) => {
                serde_json::from_value::<SecurityKey>(credential.clone())
                    .ok()
                    .map(|key| (m.method.id.clone(), key))
            }
            _ => None,
        })
        .collect()
}

/// Credential ids the user already has: stored credentials, plus `key_id`s of WebAuthn methods seeded without
/// one (so a real key that matches a seeded id is still refused).
fn registered_credential_ids(user: &User) -> Vec<CredentialID> {
    let mut ids: Vec<CredentialID> = stored_keys(user)
        .iter()
        .map(|(_, key)| key.cred_id().clone())
        .collect();
    for m in &user.methods {
        let is_webauthn = matches!(
            m.method.kind,
            MethodType::WebauthnRoaming | MethodType::WebauthnPlatform | MethodType::Passkey
        );
        if !is_webauthn {
            continue;
        }
        if let Some(key_id) = &m.method.key_id
            && let Some(id) = decode_key_id(key_id)
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    ids
}

/// Decodes a `key_id` written base64url (with or without padding) or standard base64.
pub fn decode_key_id(key_id: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(key_id)
        .or_else(|_| URL_SAFE.decode(key_id))
        .or_else(|_| STANDARD.decode(key_id))
        .ok()
}

/// JSON safe to embed in an inline `<script>`: `<`, `>` and `&` (which JSON only has inside strings) become
/// `\u003c`-style escapes, so no value can close the script element.
pub fn script_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use webauthn_rs::prelude::Passkey;

    fn user() -> User {
        User {
            user_id: "auth0|test".to_owned(),
            email: "t@example.com".to_owned(),
            name: "T </script>".to_owned(),
            password_digest: String::new(),
            methods: Vec::new(),
        }
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-01-01 00:00 UTC)
    }

    #[test]
    fn registration_options_ask_for_the_right_attachment_and_verification() {
        let ceremonies = Ceremonies::new("http://localhost:8780");
        let platform = ceremonies
            .start_registration(&user(), "t1", Attachment::Platform, now())
            .expect("platform registration starts");
        let options: serde_json::Value =
            serde_json::from_str(&platform.options_script_json).expect("options are JSON");
        let selection = &options["publicKey"]["authenticatorSelection"];
        assert_eq!(selection["authenticatorAttachment"], "platform");
        assert_eq!(selection["userVerification"], "required");
        assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
        assert!(
            options["publicKey"]["extensions"]
                .get("credentialProtectionPolicy")
                .is_some(),
            "the platform credential keeps webauthn-rs's credProtect: {options}"
        );
        assert!(
            !platform.options_script_json.contains("</script>"),
            "user names cannot close the inline script"
        );

        let roaming = ceremonies
            .start_registration(&user(), "t1", Attachment::CrossPlatform, now())
            .expect("roaming registration starts");
        let options: serde_json::Value =
            serde_json::from_str(&roaming.options_script_json).expect("options are JSON");
        let selection = &options["publicKey"]["authenticatorSelection"];
        assert_eq!(selection["authenticatorAttachment"], "cross-platform");
        assert_eq!(
            selection["userVerification"], "preferred",
            "presence-only security keys must be able to enroll"
        );
        assert!(
            options["publicKey"]["extensions"]
                .get("credentialProtectionPolicy")
                .is_none(),
            "Chromium refuses credProtect=UV-required without required UV: {options}"
        );
        assert_ne!(platform.ceremony, roaming.ceremony, "ids are random");
    }

    #[test]
    fn ceremonies_are_single_use_and_expire() {
        let ceremonies = Ceremonies::new("http://localhost:8780");
        let started = ceremonies
            .start_registration(&user(), "t1", Attachment::CrossPlatform, now())
            .expect("starts");
        let error = ceremonies
            .finish_registration(&started.ceremony, "t1", "auth0|test", "{}", now())
            .expect_err("garbage is refused");
        assert!(
            matches!(error, WebauthnError::InvalidCredential),
            "{error:?}"
        );
        let error = ceremonies
            .finish_registration(&started.ceremony, "t1", "auth0|test", "{}", now())
            .expect_err("second use is refused");
        assert!(matches!(error, WebauthnError::UnknownCeremony), "{error:?}");

        let started = ceremonies
            .start_registration(&user(), "t1", Attachment::CrossPlatform, now())
            .expect("starts");
        let later = now() + time::Duration::seconds(CEREMONY_TTL_SECONDS);
        let error = ceremonies
            .finish_registration(&started.ceremony, "t1", "auth0|test", "{}", later)
            .expect_err("expired");
        assert!(matches!(error, WebauthnError::UnknownCeremony), "{error:?}");

        let started = ceremonies
            .start_registration(&user(), "t1", Attachment::CrossPlatform, now())
            .expect("starts");
        let error = ceremonies
            .finish_registration(&started.ceremony, "t2", "auth0|test", "{}", now())
            .expect_err("another ticket");
        assert!(matches!(error, WebauthnError::Mismatch), "{error:?}");
    }

    #[test]
    fn expired_ceremonies_are_purged() {
        let ceremonies = Ceremonies::new("http://localhost:8780");
        for _ in 0..3 {
            ceremonies
                .start_registration(&user(), "t1", Attachment::Platform, now())
                .expect("starts");
        }
        assert_eq!(ceremonies.pending_count(), 3);
        let later = now() + time::Duration::seconds(CEREMONY_TTL_SECONDS + 1);
        ceremonies
            .start_registration(&user(), "t1", Attachment::Platform, later)
            .expect("starts");
        assert_eq!(ceremonies.pending_count(), 1, "expired ones are dropped");
    }

    #[test]
    fn users_without_stored_credentials_get_no_challenge() {
        let ceremonies = Ceremonies::new("http://localhost:8780");
        let challenge = ceremonies
            .start_authentication(&user(), now())
            .expect("no error");
        assert!(challenge.is_none(), "nothing to assert");
    }

    #[test]
    fn an_ip_origin_is_unavailable_not_a_panic() {
        let ceremonies = Ceremonies::new("http://127.0.0.1:8780");
        let error = ceremonies
            .start_registration(&user(), "t1", Attachment::Platform, now())
            .expect_err("no WebAuthn on an IP origin");
        assert!(matches!(error, WebauthnError::Unavailable));
    }

    #[test]
    fn script_json_cannot_close_a_script() {
        let value = serde_json::json!({"name": "</script><b>&"});
        let text = script_json(&value);
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(back, value);
    }

    #[test]
    fn challenge_html_escapes_caller_values() {
        let challenge = Challenge {
            ceremony: "abc".to_owned(),
            options_script_json: "{}".to_owned(),
        };
        let html = challenge.html("/mfa?a=1&b=\"x\"", &[("state", "<s>")]);
        assert!(html.contains(r#"action="/mfa?a=1&amp;b=&quot;x&quot;""#));
        assert!(html.contains(r#"name="state" value="&lt;s&gt;""#));
        assert!(html.contains(r#"name="ceremony" value="abc""#));
    }

    #[test]
    fn passkeys_and_security_keys_share_one_stored_shape() {
        // The stored JSON of a Passkey must read back as a SecurityKey (see the module doc).
        let json = serde_json::json!({"cred": {"cred_id": "AAEC", "cred": {"type_": "ES256", "key": {"EC_EC2": {"curve": "SECP256R1", "x": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc", "y": "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk"}}}, "counter": 0, "transports": null, "user_verified": true, "backup_eligible": false, "backup_state": false, "registration_policy": "required", "extensions": {"cred_protect": "NotRequested", "hmac_create_secret": "NotRequested", "appid": "NotRequested", "cred_props": "Ignored"}, "attestation": {"data": "None", "metadata": "None"}, "attestation_format": "none"}});
        let passkey: Passkey = serde_json::from_value(json).expect("a passkey");
        let as_json = serde_json::to_value(&passkey).expect("serializes");
        let key: SecurityKey = serde_json::from_value(as_json).expect("reads as a security key");
        assert_eq!(key.cred_id(), passkey.cred_id());
    }

    #[test]
    fn key_ids_decode_in_every_base64_spelling() {
        assert_eq!(decode_key_id("AAEC_w"), Some(vec![0, 1, 2, 255]));
        assert_eq!(decode_key_id("AAEC_w=="), Some(vec![0, 1, 2, 255]));
        assert_eq!(decode_key_id("AAEC/w=="), Some(vec![0, 1, 2, 255]));
        assert_eq!(decode_key_id("not base64!"), None);
    }

    mod with_a_software_authenticator {
        use super::*;
        use crate::enroll::commit_enrollment;
        use crate::store::Ticket;
        use crate::webauthn::soft::SoftAuthenticator;
        use crate::world::World;
        use companion_protocol::auth0::TicketFactor;

        const ORIGIN: &str = "http://localhost:8780";

        fn store_and_user(email: &str) -> (Store, User) {
            let store = Store::open(&World::demo(), None).expect("store");
            let user = store
                .read(|s| s.user_by_email(email).cloned())
                .expect("demo user");
            (store, user)
        }

        fn options(json: &str) -> serde_json::Value {
            serde_json::from_str(json).expect("options are JSON")
        }

        /// Registers `key` for `user` and stores it as a method, as the enrollment page does.
        fn enroll(
            ceremonies: &Ceremonies,
            store: &Store,
            user: &User,
            key: &SoftAuthenticator,
            attachment: Attachment,
            user_verified: bool,
        ) -> Result<String, WebauthnError> {
            let ticket = random_alphanumeric(32);
            let factor = match attachment {
                Attachment::Platform => TicketFactor::WebauthnPlatform,
                Attachment::CrossPlatform => TicketFactor::WebauthnRoaming,
            };
            store.write(|s| {
                s.tickets.insert(
                    ticket.clone(),
                    Ticket {
                        ticket_id: ticket.clone(),
                        user_id: user.user_id.clone(),
                        factor: Some(factor),
                        allow_multiple_enrollments: true,
                        created_at: now().unix_timestamp(),
                        expires_at: now().unix_timestamp() + 3600,
                        used_at: None,
                    },
                )
            });
            let started = ceremonies.start_registration(user, &ticket, attachment, now())?;
            let answer = key.register(&options(&started.options_script_json), user_verified);
            let registered = ceremonies.finish_registration(
                &started.ceremony,
                &ticket,
                &user.user_id,
                &answer,
                now(),
            )?;
            Ok(store
                .write(|s| commit_enrollment(s, &ticket, registered, None, now()))
                .expect("enrollment commits"))
        }

        fn stored_counter(store: &Store, user_id: &str, method_id: &str) -> u64 {
            store.read(|s| {
                let method = s
                    .user(user_id)
                    .and_then(|u| u.methods.iter().find(|m| m.method.id == method_id))
                    .expect("method");
                match &method.secret {
                    Some(MethodSecret::Webauthn { credential }) => {
                        credential["cred"]["counter"].as_u64().expect("counter")
                    }
                    other => panic!("not a WebAuthn secret: {other:?}"),
                }
            })
        }

        #[test]
        fn registration_yields_auth0_fields_from_the_attestation() {
            let (_, bob) = store_and_user("bob@example.com");
            let ceremonies = Ceremonies::new(ORIGIN);
            let key = SoftAuthenticator::new(ORIGIN);
            let started = ceremonies
                .start_registration(&bob, "t", Attachment::CrossPlatform, now())
                .expect("starts");
            let registered = ceremonies
                .finish_registration(
                    &started.ceremony,
                    "t",
                    &bob.user_id,
                    &key.register(&options(&started.options_script_json), false),
                    now(),
                )
                .expect("a presence-only key registers as a security key");
            assert_eq!(
                registered.key_id,
                URL_SAFE_NO_PAD.encode(&key.credential_id)
            );
            assert!(!registered.key_id.contains('='), "no padding");
            assert_eq!(
                registered.aaguid.as_deref(),
                Some("07070707-0707-0707-0707-070707070707")
            );
            let cose = STANDARD.decode(&registered.public_key).expect("base64");
            assert_eq!(cose.first(), Some(&0xa4), "the COSE key map");
            assert_eq!(registered.transports, Some(vec!["usb".to_owned()]));
            assert_eq!(registered.relying_party_identifier, "localhost");
        }

        #[test]
        fn a_presence_only_key_passes_mfa_and_updates_counter_and_last_auth_at() {
            let (store, bob) = store_and_user("bob@example.com");
            let ceremonies = Ceremonies::new(ORIGIN);
            let mut key = SoftAuthenticator::new(ORIGIN);
            let method_id = enroll(
                &ceremonies,
                &store,
                &bob,
                &key,
                Attachment::CrossPlatform,
                false,
            )
            .expect("enrolls");
            let bob = store.read(|s| s.user(&bob.user_id).cloned()).expect("bob");

            let challenge = ceremonies
                .start_authentication(&bob, now())
                .expect("starts")
                .expect("bob has a usable key");
            let opts = options(&challenge.options_script_json);
            assert_eq!(
                opts["publicKey"]["allowCredentials"][0]["id"],
                URL_SAFE_NO_PAD.encode(&key.credential_id)
            );
            let answer = key.assert(&opts, false);
            let later = now() + time::Duration::seconds(42);
            let used = ceremonies
                .finish_authentication(&store, &bob.user_id, &challenge.ceremony, &answer, later)
                .expect("the assertion verifies");
            assert_eq!(used, method_id);
            assert_eq!(
                stored_counter(&store, &bob.user_id, &method_id),
                1,
                "counter stored"
            );
            let last = store.read(|s| {
                s.user(&bob.user_id)
                    .and_then(|u| u.methods.iter().find(|m| m.method.id == method_id))
                    .and_then(|m| m.method.last_auth_at.clone())
            });
            assert_eq!(last, Some(auth0_timestamp(later)));

            let replay = ceremonies.finish_authentication(
                &store,
                &bob.user_id,
                &challenge.ceremony,
                &answer,
                later,
            );
            assert!(
                matches!(replay, Err(WebauthnError::UnknownCeremony)),
                "single use: {replay:?}"
            );

            let challenge = ceremonies
                .start_authentication(&bob, later)
                .expect("starts")
                .expect("challenge");
            let answer = key.assert(&options(&challenge.options_script_json), false);
            let (_, alice) = store_and_user("alice@example.com");
            let other = ceremonies.finish_authentication(
                &store,
                &alice.user_id,
                &challenge.ceremony,
                &answer,
                later,
            );
            assert!(
                matches!(other, Err(WebauthnError::Mismatch)),
                "another user's ceremony: {other:?}"
            );
        }

        #[test]
        fn platform_credentials_require_user_verification() {
            let (store, alice) = store_and_user("alice@example.com");
            let ceremonies = Ceremonies::new(ORIGIN);
            let mut key = SoftAuthenticator::new(ORIGIN);
            let refused = enroll(
                &ceremonies,
                &store,
                &alice,
                &key,
                Attachment::Platform,
                false,
            );
            assert!(
                matches!(refused, Err(WebauthnError::Rejected(_))),
                "no UV, no platform enrollment: {refused:?}"
            );
            let method_id = enroll(
                &ceremonies,
                &store,
                &alice,
                &key,
                Attachment::Platform,
                true,
            )
            .expect("enrolls with UV");
            let alice = store
                .read(|s| s.user(&alice.user_id).cloned())
                .expect("alice");

            let challenge = ceremonies
                .start_authentication(&alice, now())
                .expect("starts")
                .expect("challenge");
            let answer = key.assert(&options(&challenge.options_script_json), false);
            let refused = ceremonies.finish_authentication(
                &store,
                &alice.user_id,
                &challenge.ceremony,
                &answer,
                now(),
            );
            assert!(
                matches!(refused, Err(WebauthnError::Rejected(_))),
                "presence alone does not pass a platform credential: {refused:?}"
            );
            let challenge = ceremonies
                .start_authentication(&alice, now())
                .expect("starts")
                .expect("challenge");
            let answer = key.assert(&options(&challenge.options_script_json), true);
            let used = ceremonies
                .finish_authentication(&store, &alice.user_id, &challenge.ceremony, &answer, now())
                .expect("with UV it passes");
            assert_eq!(used, method_id);

            let again = ceremonies
                .start_registration(&alice, "t", Attachment::CrossPlatform, now())
                .expect("starts");
            let excluded = options(&again.options_script_json)["publicKey"]["excludeCredentials"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(
                excluded
                    .iter()
                    .any(|c| c["id"] == URL_SAFE_NO_PAD.encode(&key.credential_id)),
                "registered credentials are excluded: {excluded:?}"
            );
        }

        #[test]
        fn another_origin_is_refused() {
            let (_, bob) = store_and_user("bob@example.com");
            let ceremonies = Ceremonies::new(ORIGIN);
            let key = SoftAuthenticator::new("http://localhost:9999");
            let started = ceremonies
                .start_registration(&bob, "t", Attachment::CrossPlatform, now())
                .expect("starts");
            let refused = ceremonies.finish_registration(
                &started.ceremony,
                "t",
                &bob.user_id,
                &key.register(&options(&started.options_script_json), false),
                now(),
            );
            assert!(
                matches!(refused, Err(WebauthnError::Rejected(_))),
                "the origin check includes the port: {refused:?}"
            );
        }
    }
}
