//! The extra CA file option.

use std::io::Write;

use companion_mgmt::{ConfigError, MgmtClient, MgmtError};

use crate::harness::config_for;

/// TEST-ONLY self-signed CA certificate (`CN=companion-mgmt test CA`, P-256); its key is not kept anywhere.
const TEST_ONLY_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBmjCCAT+gAwIBAgIUdcrcxn9N+1v++S8+CRnWU6sb1dgwCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWY29tcGFuaW9uLW1nbXQgdGVzdCBDQTAgFw0yNjExMjQwODIz
MjBaGA8yMTI2MTAzMTA4MjMyMFowITEfMB0GA1UEAwwWY29tcGFuaW9uLW1nbXQg
dGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMJbSdOmk9BSE9EW4n/z
XBpTUFVtmmvnp/nsd+XSUQMdE2/rYk7SETWlGbgsUWoQ9bOTAAjQcvhHVNtLs4lB
QWCjUzBRMB0GA1UdDgQWBBStZNpml1+3rfvyno/WCj9J3gc1tzAfBgNVHSMEGDAW
gBStZNpml1+3rfvyno/WCj9J3gc1tzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49
BAMCA0kAMEYCIQCSkFf76qqKAJudR4EEmfNYHcUYtAahthyPQAix4jMQ2AIhALNz
1v5kDtPlF9cQ/LIU5rNUZ6kCoP9QJq/1f3QXQasS
-----END CERTIFICATE-----
";

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
