//! Names of claims, scopes and protocol constants that several parts of the product must agree on.

/// Namespaced access-token claim: epoch seconds of the user's latest authentication in this session.
pub const AUTH_TIME_CLAIM: &str = "https://passkey-companion/auth_time";

/// Namespaced access-token claim: epoch seconds of the latest MFA in this session, absent if none.
pub const MFA_TIME_CLAIM: &str = "https://passkey-companion/mfa_time";

/// The `acr` value (and `acr_values` request) that asks for multi-factor authentication.
pub const MFA_ACR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// The default identifier (audience) of the Passkey Companion proxy API.
pub const DEFAULT_API_AUDIENCE: &str = "https://passkey-companion/api";

/// Management API scopes the proxy's machine-to-machine client holds (auth0-reference §12).
pub const PROXY_MGMT_SCOPES: [&str; 4] = [
    "read:authentication_methods",
    "update:authentication_methods",
    "delete:authentication_methods",
    "create:guardian_enrollment_tickets",
];

/// The `aud` claim: a single string or an array of strings (Auth0 sends an array when `openid` was requested).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum AudienceClaim {
    /// `"aud": "https://passkey-companion/api"`.
    One(String),
    /// `"aud": ["https://passkey-companion/api", "https://tenant/userinfo"]`.
    Many(Vec<String>),
}

impl AudienceClaim {
    /// Whether `audience` is (one of) the token's audiences. Exact string comparison.
    pub fn contains(&self, audience: &str) -> bool {
        self.iter().any(|a| a == audience)
    }

    /// The audiences in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let slice: &[String] = match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        };
        slice.iter().map(String::as_str)
    }
}

/// Claims of an access token for the proxy API (design.md §4). Unknown claims are ignored.
///
/// The two namespaced claims come from the post-login Action (Auth0 forbids `auth_time`/`amr` in access tokens).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccessTokenClaims {
    /// Issuer: the tenant URL with a trailing slash.
    pub iss: String,
    /// The user, e.g. `auth0|68998c2d684ac37fcd52bfbe`.
    pub sub: String,
    /// Audience(s); must contain the API identifier.
    pub aud: AudienceClaim,
    /// The client the token was issued to.
    pub azp: String,
    /// Expiry, epoch seconds.
    pub exp: u64,
    /// Issued at, epoch seconds.
    pub iat: u64,
    /// Not before, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Granted scopes, space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// [`AUTH_TIME_CLAIM`]: epoch seconds of the latest authentication in this session.
    #[serde(
        rename = "https://passkey-companion/auth_time",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_time: Option<u64>,
    /// [`MFA_TIME_CLAIM`]: epoch seconds of the latest MFA in this session, absent if none.
    #[serde(
        rename = "https://passkey-companion/mfa_time",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mfa_time: Option<u64>,
}

impl AccessTokenClaims {
    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.as_deref().unwrap_or("").split_ascii_whitespace()
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_claim_names_match_the_constants() {
        let claims = AccessTokenClaims {
            iss: "https://t/".into(),
            sub: "auth0|a".into(),
            aud: AudienceClaim::One(DEFAULT_API_AUDIENCE.into()),
            azp: "companion-desktop".into(),
            exp: 2,
            iat: 1,
            nbf: None,
            scope: None,
            auth_time: Some(10),
            mfa_time: Some(11),
        };
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(
            json[AUTH_TIME_CLAIM], 10,
            "serde rename must equal AUTH_TIME_CLAIM"
        );
        assert_eq!(
            json[MFA_TIME_CLAIM], 11,
            "serde rename must equal MFA_TIME_CLAIM"
        );
    }

    #[test]
    fn audience_is_one_or_many() {
        let one: AudienceClaim =
            serde_json::from_str(r#""https://passkey-companion/api""#).unwrap();
        assert!(one.contains(DEFAULT_API_AUDIENCE));
        let many: AudienceClaim =
            serde_json::from_str(r#"["https://passkey-companion/api","https://t/userinfo"]"#)
                .unwrap();
        assert!(many.contains(DEFAULT_API_AUDIENCE));
        assert!(many.contains("https://t/userinfo"));
        assert!(
            !many.contains("https://passkey-companion/ap"),
            "no prefix matching"
        );
        assert_eq!(many.iter().count(), 2);
        assert!(serde_json::from_str::<AudienceClaim>("42").is_err());
    }
}
