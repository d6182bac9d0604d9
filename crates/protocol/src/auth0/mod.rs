//! Auth0's own wire shapes: Management API bodies, Authentication API bodies and their error shapes.
//!
//! Field names follow Auth0's OpenAPI specification; where Auth0's documentation shows other spellings
//! (camelCase WebAuthn fields, `push-notification`), deserialization accepts both.

mod errors;
mod guardian;
mod methods;
mod oauth;

pub use errors::{MgmtErrorBody, OAuthErrorBody};
pub use guardian::{
    EnrollmentTicket, EnrollmentTicketRequest, GuardianFactor, GuardianFactorUpdate, TicketFactor,
};
pub use methods::{
    AuthenticationMethod, AuthenticationMethodsPage, AuthenticationMethodsResponse, LinkedMethod,
    MethodType, UpdateAuthenticationMethod,
};
pub use oauth::TokenResponse;
