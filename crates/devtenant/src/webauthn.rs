//! WebAuthn ceremonies with `webauthn-rs`: registration for enrollment tickets and assertion for MFA challenges.

/// Ceremonies in progress, keyed by a single-use id.
#[derive(Debug)]
pub struct Ceremonies {
    origin: String,
}

impl Ceremonies {
    /// Ceremonies for pages served at `base_url` (RP ID `localhost`).
    pub fn new(base_url: &str) -> Self {
        Self {
            origin: base_url.to_owned(),
        }
    }

    /// The origin pages are served from.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}
