//! Auth0's own wire shapes: Management API bodies, Authentication API bodies and their error shapes.
//!
//! Field names follow Auth0's OpenAPI specification; where Auth0's documentation shows other spellings
//! (camelCase WebAuthn fields, `push-notification`), deserialization accepts both.

mod errors;
mod guardian;
mod methods;
mod mfa;
mod oauth;
mod oidc;

pub use errors::{
    MfaFactorRequirement, MfaRequiredErrorBody, MfaRequirements, MgmtErrorBody, OAuthErrorBody,
};
pub use guardian::{
    EnrollmentTicket, EnrollmentTicketRequest, GuardianFactor, GuardianFactorName,
    GuardianFactorUpdate, MfaPolicy, TicketFactor, UserVerification, WebAuthnFactorSettings,
};
pub use methods::{
    AuthenticationMethod, AuthenticationMethodsPage, AuthenticationMethodsResponse, LinkedMethod,
    MethodType, UpdateAuthenticationMethod,
};
pub use mfa::{MfaAuthenticator, MfaAuthenticatorType, OobChannel};
pub use oauth::TokenResponse;
pub use oidc::{Jwk, Jwks, OidcDiscovery};
