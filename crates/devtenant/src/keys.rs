//! RS256 signing keys and the JWKS that publishes them; rotation keeps retired keys published for a grace period.

use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// Errors of key generation and signing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// RSA key generation failed.
    #[error("cannot generate an RSA signing key")]
    Generate(#[source] rsa::Error),
    /// The key could not be encoded.
    #[error("cannot encode the RSA signing key")]
    Encode(#[source] rsa::pkcs1::Error),
    /// Signing or verification failed.
    #[error("jwt operation failed")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

struct SigningKey {
    kid: String,
    n: String,
    e: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl SigningKey {
    fn generate(bits: usize) -> Result<Self, KeyError> {
        let private =
            rsa::RsaPrivateKey::new(&mut rand::thread_rng(), bits).map_err(KeyError::Generate)?;
        let der = private.to_pkcs1_der().map_err(KeyError::Encode)?;
        let n = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
        // RFC 7638 thumbprint: members in lexicographic order, no whitespace.
        let thumbprint =
            Sha256::digest(format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#).as_bytes());
        let kid = URL_SAFE_NO_PAD.encode(&thumbprint[..16]);
        let decoding = DecodingKey::from_rsa_components(&n, &e)?;
        Ok(Self {
            kid,
            n,
            e,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            decoding,
        })
    }

    fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": self.n,
            "e": self.e,
        })
    }
}

struct KeySet {
    current: SigningKey,
    /// Retired keys and the Unix second until which they stay published.
    retired: Vec<(SigningKey, i64)>,
}

/// The tenant's signing keys.
pub struct SigningKeys {
    set: RwLock<KeySet>,
    bits: usize,
    grace_seconds: i64,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("current_kid", &self.current_kid())
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Generates a fresh key of `bits` bits; retired keys stay in the JWKS for `grace_seconds`.
    ///
    /// # Errors
    /// [`KeyError`] when key generation fails.
    pub fn generate(bits: usize, grace_seconds: i64) -> Result<Self, KeyError> {
        let current = SigningKey::generate(bits)?;
        Ok(Self {
            set: RwLock::new(KeySet {
                current,
                retired: Vec::new(),
            }),
            bits,
            grace_seconds,
        })
    }

    /// The `kid` of the key that signs new tokens.
    pub fn current_kid(&self) -> String {
        self.set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .current
            .kid
            .clone()
    }

    /// Signs `claims` as an RS256 JWT with the current key's `kid` (and `typ` set to `typ`).
    ///
    /// # Errors
    /// [`KeyError::Jwt`] when serialization or signing fails.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let set = self
            .set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(set.current.kid.clone());
        header.typ = Some(typ.to_owned());
        Ok(jsonwebtoken::encode(
            &header,
            claims,
            &set.current.encoding,
        )?)
    }

    /// Verifies an RS256 JWT signed by any published key, with `validation`'s checks; `exp` and `nbf` are checked
    /// against `now` (the tenant's clock, with `validation.leeway`), not the system clock.
    ///
    /// # Errors
    /// [`KeyError::Jwt`] when the token is malformed, signed by an unknown key, expired, not yet valid, or fails
    /// `validation`.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
        now: i64,
    ) -> Result<T, KeyError> {
        use jsonwebtoken::errors::{Error, ErrorKind};
        let header = jsonwebtoken::decode_header(token)?;
        let mut checks = validation.clone();
        checks.validate_exp = false;
        checks.validate_nbf = false;
        checks.required_spec_claims.remove("exp");
        let claims: serde_json::Value = {
            let set = self
                .set
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let key = std::iter::once(&set.current)
                .chain(
                    set.retired
                        .iter()
                        .filter(|(_, until)| *until > now)
                        .map(|(k, _)| k),
                )
                .find(|k| header.kid.as_deref() == Some(k.kid.as_str()))
                .ok_or_else(|| Error::from(ErrorKind::InvalidKeyFormat))?;
            jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &checks)?.claims
        };
        let leeway = i64::try_from(validation.leeway).unwrap_or(i64::MAX);
        if validation.validate_exp {
            match claims.get("exp").and_then(serde_json::Value::as_i64) {
                Some(exp) if exp.saturating_add(leeway) > now => {}
                Some(_) => return Err(Error::from(ErrorKind::ExpiredSignature).into()),
                None => {
                    return Err(
                        Error::from(ErrorKind::MissingRequiredClaim("exp".to_owned())).into(),
                    );
                }
            }
        }
        if validation.validate_nbf
            && let Some(nbf) = claims.get("nbf").and_then(serde_json::Value::as_i64)
            && nbf > now.saturating_add(leeway)
        {
            return Err(Error::from(ErrorKind::ImmatureSignature).into());
        }
        serde_json::from_value(claims)
            .map_err(|e| Error::from(ErrorKind::Json(std::sync::Arc::new(e))).into())
    }

    /// The JWKS document at `now`: the current key and every retired key still in its grace period.
    pub fn jwks(&self, now: i64) -> serde_json::Value {
        let set = self
            .set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let keys: Vec<_> = std::iter::once(set.current.jwk())
            .chain(
                set.retired
                    .iter()
                    .filter(|(_, until)| *until > now)
                    .map(|(k, _)| k.jwk()),
            )
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Replaces the signing key; the old one stays published until `now + grace`. Returns the new `kid`.
    ///
    /// # Errors
    /// [`KeyError`] when key generation fails (the current key then stays).
    pub fn rotate(&self, now: i64) -> Result<String, KeyError> {
        let fresh = SigningKey::generate(self.bits)?;
        let kid = fresh.kid.clone();
        let mut set = self
            .set
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = std::mem::replace(&mut set.current, fresh);
        set.retired.retain(|(_, until)| *until > now);
        set.retired.push((old, now + self.grace_seconds));
        Ok(kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_old_key_published_for_the_grace_period() {
        let keys = SigningKeys::generate(2048, 600).expect("keygen");
        let old = keys.current_kid();
        let new = keys.rotate(1_000).expect("rotate");
        assert_ne!(old, new, "rotation makes a new kid");
        let kids = |now| -> Vec<String> {
            keys.jwks(now)["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            kids(1_100),
            [new.clone(), old],
            "old key published during the grace period"
        );
        assert_eq!(kids(1_601), [new], "old key dropped after the grace period");
    }

    #[test]
    fn signed_tokens_verify_with_published_keys() {
        let keys = SigningKeys::generate(2048, 600).expect("keygen");
        let token = keys
            .sign(
                "JWT",
                &serde_json::json!({"sub": "x", "exp": 4_000_000_000_u64}),
            )
            .expect("sign");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        let claims: serde_json::Value = keys.verify(&token, &validation, 0).expect("verify");
        assert_eq!(claims["sub"], "x");
        keys.rotate(0).expect("rotate");
        let still: serde_json::Value = keys
            .verify(&token, &validation, 10)
            .expect("verify during grace");
        assert_eq!(still["sub"], "x");
        assert!(
            keys.verify::<serde_json::Value>(&token, &validation, 10_000)
                .is_err(),
            "retired key expired"
        );
    }
}
