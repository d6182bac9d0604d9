//! Secrets never appear in `Debug` output.

use companion_protocol::auth0::{MfaRequiredErrorBody, TokenResponse};

use crate::support::parse;

#[test]
fn token_response_debug_redacts_every_token() {
    let response = TokenResponse {
        access_token: "at-SECRET-1".into(),
        token_type: "Bearer".into(),
        expires_in: 86_400,
        id_token: Some("idt-SECRET-2".into()),
        refresh_token: Some("rt-SECRET-3".into()),
        scope: Some("openid offline_access".into()),
    };
    let debug = format!("{response:?}");
    let pretty = format!("{response:#?}");
    for shown in [&debug, &pretty] {
        assert!(
            !shown.contains("SECRET"),
            "Debug must not show tokens: {shown}"
        );
        assert!(
            shown.contains("[redacted]"),
            "Debug marks redacted fields: {shown}"
        );
        assert!(
            shown.contains("86400") && shown.contains("openid offline_access"),
            "non-secrets stay visible"
        );
    }
    let recorded: TokenResponse = parse("token_client_credentials_recorded.json");
    assert!(
        !format!("{recorded:?}").contains("test-access-token"),
        "fixture token redacted too"
    );
}

#[test]
fn mfa_required_body_debug_redacts_the_mfa_token() {
    let body: MfaRequiredErrorBody = parse("oauth_error_mfa_required.json");
    let debug = format!("{body:?}");
    assert!(
        !debug.contains("test-mfa-token"),
        "mfa_token must be redacted: {debug}"
    );
    assert!(
        debug.contains("mfa_required") && debug.contains("otp"),
        "the rest stays visible: {debug}"
    );
}
