//! Tenant provisioning for IT: plans and applies the APIs, clients, grants, factors and the post-login Action
//! that Passkey Companion needs.
