//! The desktop client's side of Authorization Code + PKCE, as a test plays it: a verifier and its S256
//! challenge, a one-shot loopback listener on a registered callback port, the code exchange, and ID-token
//! claims.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The demo world's public desktop client.
pub const DESKTOP_CLIENT_ID: &str = "companion-desktop";
/// Its registered loopback callback ports (`http://127.0.0.1:<port>/callback`).
pub const CALLBACK_PORTS: std::ops::RangeInclusive<u16> = 53180..=53189;
/// The `acr_values` that asks for multi-factor authentication.
pub const MFA_ACR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// A PKCE verifier and its S256 challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    /// The verifier (kept by the client).
    pub verifier: String,
    /// `BASE64URL(SHA256(verifier))`.
    pub challenge: String,
}

impl Pkce {
    /// A fresh random pair.
    pub fn new() -> Self {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
        let mut rng = rand::thread_rng();
        let verifier: String = (0..64)
            .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
            .collect();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// A one-shot HTTP listener on the first free registered callback port.
#[derive(Debug)]
pub struct CallbackListener {
    /// `http://127.0.0.1:<port>/callback`.
    pub redirect_uri: String,
    received: oneshot::Receiver<String>,
}

impl CallbackListener {
    /// Binds the first free port of [`CALLBACK_PORTS`] and answers the first request with a small page.
    ///
    /// # Errors
    /// When every registered port is taken.
    pub async fn bind() -> anyhow::Result<Self> {
        let mut bound = None;
        for port in CALLBACK_PORTS {
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
                bound = Some((listener, port));
                break;
            }
        }
        let (listener, port) = bound
            .ok_or_else(|| anyhow!("every registered callback port {CALLBACK_PORTS:?} is taken"))?;
        let (tx, received) = oneshot::channel();
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 8192];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let target = request
                .lines()
                .next()
                .and_then(|line| line.split_whitespace().nth(1))
                .unwrap_or_default()
                .to_owned();
            let body = "<!doctype html><title>Signed in</title><h1 id=\"signed-in\">Signed in</h1>";
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
            let _ = tx.send(target);
        });
        Ok(Self {
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
            received,
        })
    }

    /// Waits for the callback and returns its query parameters.
    ///
    /// # Errors
    /// On timeout.
    pub async fn wait(self, timeout: Duration) -> anyhow::Result<Vec<(String, String)>> {
        let target = tokio::time::timeout(timeout, self.received)
            .await
            .context("no callback arrived in time")?
            .context("callback listener stopped")?;
        let url = url::Url::parse(&format!("http://127.0.0.1{target}"))?;
        Ok(url.query_pairs().into_owned().collect())
    }
}

/// The `/authorize` URL of the desktop client for this request.
pub fn authorize_url(
    base_url: &str,
    redirect_uri: &str,
    pkce: &Pkce,
    state: &str,
    nonce: &str,
    acr: Option<&str>,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", DESKTOP_CLIENT_ID)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid profile email")
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    if let Some(acr) = acr {
        query.append_pair("acr_values", acr);
    }
    format!("{base_url}/authorize?{}", query.finish())
}

/// Exchanges `code` at `/oauth/token` and returns the token response.
///
/// # Errors
/// When the tenant refuses.
pub async fn exchange_code(
    base_url: &str,
    code: &str,
    pkce: &Pkce,
    redirect_uri: &str,
) -> anyhow::Result<Value> {
    let request = crate::http_client()
        .post(format!("{base_url}/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", DESKTOP_CLIENT_ID),
            ("code", code),
            ("code_verifier", &pkce.verifier),
            ("redirect_uri", redirect_uri),
        ]);
    crate::tenant::json_or_refused(request, "code exchange").await
}

/// The claims of a JWT, unverified (see [`verified_claims`]).
///
/// # Errors
/// When `jwt` is not a JWT.
pub fn jwt_claims(jwt: &str) -> anyhow::Result<Value> {
    let payload = jwt.split('.').nth(1).ok_or_else(|| anyhow!("not a JWT"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .context("payload is not base64url")?;
    serde_json::from_slice(&bytes).context("payload is not JSON")
}

/// Verifies `jwt` (RS256) against the tenant's JWKS at `<base_url>/.well-known/jwks.json`, with issuer
/// `<base_url>/` and `audience`, and returns its claims.
///
/// # Errors
/// When the JWKS cannot be fetched, no key matches the token's `kid`, or the token does not verify.
pub async fn verified_claims(base_url: &str, jwt: &str, audience: &str) -> anyhow::Result<Value> {
    let header = jsonwebtoken::decode_header(jwt).context("a JWT header")?;
    let kid = header.kid.context("a kid in the JWT header")?;
    let jwks: Value = crate::http_client()
        .get(format!("{base_url}/.well-known/jwks.json"))
        .send()
        .await?
        .json()
        .await?;
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
        .with_context(|| format!("key {kid} in the JWKS {jwks}"))?;
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().unwrap_or_default(),
        key["e"].as_str().unwrap_or_default(),
    )?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[format!("{base_url}/")]);
    validation.set_audience(&[audience]);
    let data =
        jsonwebtoken::decode::<Value>(jwt, &decoding, &validation).context("the JWT verifies")?;
    Ok(data.claims)
}

/// A random value for `state` / `nonce`.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::thread_rng().r#gen::<[u8; 16]>())
}
