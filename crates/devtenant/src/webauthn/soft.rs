//! A software WebAuthn authenticator for tests: an RS256 key, real CBOR attestation objects (`fmt: none`), real
//! client data and real signatures, so ceremonies are checked by `webauthn-rs` exactly as with a browser.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// Flag bits of `authData`.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

/// A software authenticator holding one credential.
pub(crate) struct SoftAuthenticator {
    key: RsaPrivateKey,
    /// The credential id.
    pub(crate) credential_id: Vec<u8>,
    /// The AAGUID it reports.
    pub(crate) aaguid: [u8; 16],
    /// Its signature counter.
    pub(crate) counter: u32,
    /// The origin the "browser" reports in client data.
    pub(crate) origin: String,
}

impl SoftAuthenticator {
    /// A new authenticator with a fresh RSA key, used from pages at `origin`.
    pub(crate) fn new(origin: &str) -> Self {
        let mut rng = rand::thread_rng();
        #[allow(clippy::expect_used)] // Test helper: key generation with a valid size cannot fail.
        let key = RsaPrivateKey::new(&mut rng, 2048).expect("RSA key generation");
        Self {
            key,
            credential_id: rand::Rng::r#gen::<[u8; 32]>(&mut rng).to_vec(),
            aaguid: [7; 16],
            counter: 0,
            origin: origin.to_owned(),
        }
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    fn cose_key(&self) -> Vec<u8> {
        let public = RsaPublicKey::from(&self.key);
        let mut out = vec![0xa4];
        out.extend([0x01, 0x03]); // kty: RSA
        out.extend([0x03, 0x39, 0x01, 0x00]); // alg: -257 (RS256)
        out.push(0x20); // -1: n
        cbor_bytes(&mut out, &public.n().to_bytes_be());
        out.push(0x21); // -2: e
        cbor_bytes(&mut out, &public.e().to_bytes_be());
        out
    }

    /// Answers `navigator.credentials.create` for `options` (the JSON the page embeds) with `user_verified`,
    /// returning the `RegisterPublicKeyCredential` JSON the page would post.
    pub(crate) fn register(&self, options: &Value, user_verified: bool) -> String {
        let pk = &options["publicKey"];
        let challenge = pk["challenge"].as_str().unwrap_or_default();
        let rp_id = pk["rp"]["id"].as_str().unwrap_or_default();
        let mut auth = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth.push(UP | AT | if user_verified { UV } else { 0 });
        auth.extend(self.counter.to_be_bytes());
        auth.extend(self.aaguid);
        auth.extend(
            u16::try_from(self.credential_id.len())
                .unwrap_or(0)
                .to_be_bytes(),
        );
        auth.extend(&self.credential_id);
        auth.extend(self.cose_key());
        let mut attestation = vec![0xa3];
        cbor_text(&mut attestation, "fmt");
        cbor_text(&mut attestation, "none");
        cbor_text(&mut attestation, "attStmt");
        attestation.push(0xa0);
        cbor_text(&mut attestation, "authData");
        cbor_bytes(&mut attestation, &auth);
        let id = URL_SAFE_NO_PAD.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "attestationObject": URL_SAFE_NO_PAD.encode(attestation),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(self.client_data("webauthn.create", challenge)),
                "transports": ["usb"],
            },
            "extensions": {},
        })
        .to_string()
    }

    /// Answers `navigator.credentials.get` for `options` with `user_verified`, bumping the counter, and returns
    /// the `PublicKeyCredential` JSON the page would post.
    pub(crate) fn assert(&mut self, options: &Value, user_verified: bool) -> String {
        let pk = &options["publicKey"];
        let challenge = pk["challenge"].as_str().unwrap_or_default();
        let rp_id = pk["rpId"].as_str().unwrap_or_default();
        self.counter += 1;
        let mut auth = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth.push(UP | if user_verified { UV } else { 0 });
        auth.extend(self.counter.to_be_bytes());
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signed = auth.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature = SigningKey::<Sha256>::new(self.key.clone()).sign(&signed);
        let id = URL_SAFE_NO_PAD.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": URL_SAFE_NO_PAD.encode(auth),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data),
                "signature": URL_SAFE_NO_PAD.encode(signature.to_vec()),
                "userHandle": null,
            },
            "extensions": {},
        })
        .to_string()
    }
}

fn cbor_len(out: &mut Vec<u8>, major: u8, len: usize) {
    let major = major << 5;
    match len {
        0..=23 => out.push(major | u8::try_from(len).unwrap_or(0)),
        24..=255 => out.extend([major | 24, u8::try_from(len).unwrap_or(0)]),
        _ => {
            out.push(major | 25);
            out.extend(u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
        }
    }
}

fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    cbor_len(out, 2, bytes.len());
    out.extend(bytes);
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    cbor_len(out, 3, text.len());
    out.extend(text.as_bytes());
}
