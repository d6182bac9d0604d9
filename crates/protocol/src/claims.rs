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
