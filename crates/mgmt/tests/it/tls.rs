//! TLS: native roots plus the extra CA file, checked against a real HTTPS server on loopback.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use companion_mgmt::{ConfigError, MgmtClient, MgmtError, TokenFailureReason};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::harness::config_for;

/// TEST-ONLY CA certificate (`CN=companion-mgmt test CA`, P-256, valid until 2126); its key was discarded.
const TEST_ONLY_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBqDCCAU+gAwIBAgIUSLNWpS3wz/T9z1uQgcPY+nBOii0wCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWY29tcGFuaW9uLW1nbXQgdGVzdCBDQTAgFw0yNjExMjQwODM0
NThaGA8yMTI2MTAzMTA4MzQ1OFowITEfMB0GA1UEAwwWY29tcGFuaW9uLW1nbXQg
dGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABEUf2WVYnN23u3OsT+cH
NaHiy03IBgWaHpXG/XUNE7CEZBgfz8umspQ4pxvRQiFGXq/NMR7viHBkSb51n6oU
eWujYzBhMB0GA1UdDgQWBBQ3uSy+11u+XHK6b5IWzjFp0wwUETAfBgNVHSMEGDAW
gBQ3uSy+11u+XHK6b5IWzjFp0wwUETAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB
/wQEAwIBBjAKBggqhkjOPQQDAgNHADBEAiBeHFKij6cStS2glGfV1vXSyI+VVp6L
RSw7hMAiYG64gwIgM1xVWBAe2q/y/0fK3FjfHtzYr9Zu5GNjyd8P9RVPNms=
-----END CERTIFICATE-----
";

/// TEST-ONLY server certificate for `localhost` and `127.0.0.1`, issued by [`TEST_ONLY_CA_PEM`].
const TEST_ONLY_SERVER_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIByDCCAW+gAwIBAgIUK36B+fY2lGsyPB4gLRad5bjBTK4wCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWY29tcGFuaW9uLW1nbXQgdGVzdCBDQTAgFw0yNjExMjQwODM0
NThaGA8yMTI2MTAzMTA4MzQ1OFowFDESMBAGA1UEAwwJbG9jYWxob3N0MFkwEwYH
KoZIzj0CAQYIKoZIzj0DAQcDQgAELSAi6221173pKp9ENAi25rSKD72ObfMdqH6t
WbgIJNyMGwadevwrXn5iKFRyZy5Jbc5r7Zdw1ZbFtN3miyYuK6OBjzCBjDAJBgNV
HRMEAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAaBgNV
HREEEzARgglsb2NhbGhvc3SHBH8AAAEwHQYDVR0OBBYEFPP8K1ANeBqEo3nrUf03
1gwmVJ9rMB8GA1UdIwQYMBaAFDe5LL7XW75ccrpvkhbOMWnTDBQRMAoGCCqGSM49
BAMCA0cAMEQCIDXFUMds2LlW9IkDkLSNASZyW/maxHzuK0AZknB7MvZMAiALD188
oVc8H2tBF0M1nZ+eKqj3BEa//dxRtwQDaGCMMQ==
-----END CERTIFICATE-----
";

/// TEST-ONLY private key of [`TEST_ONLY_SERVER_CERT_PEM`]; it protects nothing but this test.
const TEST_ONLY_SERVER_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg6wNbwWwgRwZl/+DE
NSjaz42nwOsMU3SlSePnL4Aq1p6hRANCAAQtICLrbbXXvekqn0Q0CLbmtIoPvY5t
8x2ofq1ZuAgk3IwbBp16/CtefmIoVHJnLkltzmvtl3DVlsW03eaLJi4r
-----END PRIVATE KEY-----
";

/// An HTTPS token endpoint on 127.0.0.1:0 with the test server certificate: answers every request with a token
/// and counts the requests it served.
async fn https_token_endpoint() -> (String, Arc<AtomicU64>) {
    let certs = CertificateDer::pem_slice_iter(TEST_ONLY_SERVER_CERT_PEM.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(TEST_ONLY_SERVER_KEY_PEM.as_bytes()).unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await
                    && serve_one(&mut tls).await.is_ok()
                {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (format!("https://127.0.0.1:{port}"), served)
}

/// Reads one HTTP/1.1 request (head and `content-length` body) and answers with a token.
async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = r#"{"access_token":"tls-token","expires_in":3600,"token_type":"Bearer"}"#;
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[tokio::test]
async fn a_server_signed_by_the_extra_ca_is_trusted() {
    let (base, served) = https_token_endpoint().await;
    let ca = file_with(TEST_ONLY_CA_PEM);
    let mut config = config_for(&base);
    config.extra_ca_file = Some(ca.path().to_owned());
    let client = MgmtClient::new(config).unwrap();
    client
        .ensure_token()
        .await
        .expect("TLS with the extra CA works");
    assert_eq!(served.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn without_the_extra_ca_the_server_is_not_trusted() {
    let (base, served) = https_token_endpoint().await;
    let mut config = config_for(&base);
    config.retry.max_attempts = 1;
    let client = MgmtClient::new(config).unwrap();
    let error = client.ensure_token().await.unwrap_err();
    let MgmtError::TokenRequest(token_error) = &error else {
        panic!("expected a token error, got {error:?}");
    };
    assert_eq!(
        token_error.reason(),
        TokenFailureReason::Transport,
        "{error:?}"
    );
    assert_eq!(
        served.load(Ordering::SeqCst),
        0,
        "no request crossed an untrusted connection"
    );
}

#[tokio::test]
async fn one_shared_client_carries_the_extra_ca_to_every_user() {
    let (base, served) = https_token_endpoint().await;
    let ca = file_with(TEST_ONLY_CA_PEM);
    let mut config = config_for(&base);
    config.extra_ca_file = Some(ca.path().to_owned());
    let http = companion_mgmt::http_client(&config).expect("the shared client builds");
    let client =
        MgmtClient::with_http(config, http.clone(), Arc::new(companion_mgmt::SystemClock)).unwrap();
    client
        .ensure_token()
        .await
        .expect("the Management client trusts the extra CA through the shared client");
    // Another user of the same client (the proxy's JWKS fetcher) gets the same trust and the same rules.
    let response = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .expect("a second user of the shared client trusts the extra CA");
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        served.load(Ordering::SeqCst),
        2,
        "both requests were served"
    );
}

#[test]
fn the_shared_client_refuses_an_unusable_ca_file() {
    let mut config = config_for("https://acme.eu.auth0.com");
    config.extra_ca_file = Some("/nonexistent/companion-ca.pem".into());
    let error = companion_mgmt::http_client(&config).unwrap_err();
    assert!(matches!(error, ConfigError::CaFileRead { .. }), "{error:?}");
}

fn file_with(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(contents.as_bytes()).unwrap();
    file
}

#[test]
fn a_pem_ca_file_is_accepted() {
    let file = file_with(TEST_ONLY_CA_PEM);
    let mut config = config_for("https://acme.eu.auth0.com");
    config.extra_ca_file = Some(file.path().to_owned());
    MgmtClient::new(config).expect("a PEM CA file is accepted");
}

#[test]
fn a_missing_ca_file_is_a_config_error() {
    let mut config = config_for("https://acme.eu.auth0.com");
    config.extra_ca_file = Some("/nonexistent/companion-ca.pem".into());
    let error = MgmtClient::new(config).unwrap_err();
    assert!(
        matches!(
            error,
            MgmtError::InvalidConfig(ConfigError::CaFileRead { .. })
        ),
        "{error:?}"
    );
}

#[test]
fn a_ca_file_without_certificates_is_a_config_error() {
    let file = file_with("this is not a certificate\n");
    let mut config = config_for("https://acme.eu.auth0.com");
    config.extra_ca_file = Some(file.path().to_owned());
    let error = MgmtClient::new(config).unwrap_err();
    assert!(
        matches!(
            error,
            MgmtError::InvalidConfig(ConfigError::CaFileInvalid { .. })
        ),
        "{error:?}"
    );
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let error = MgmtClient::new(config_for("http://acme.eu.auth0.com")).unwrap_err();
    assert!(
        matches!(
            error,
            MgmtError::InvalidConfig(ConfigError::TenantUrl { .. })
        ),
        "{error:?}"
    );
}

#[test]
fn client_debug_redacts_the_secret() {
    let client = MgmtClient::new(config_for("https://acme.eu.auth0.com")).unwrap();
    let debug = format!("{client:?}");
    assert!(
        !debug.contains(companion_devtenant::world::demo::PROXY_CLIENT_SECRET),
        "{debug}"
    );
    assert!(debug.contains("[redacted]"), "{debug}");
    assert!(debug.contains("companion-proxy"), "{debug}");
}
