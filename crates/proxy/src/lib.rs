//! The Passkey Companion backend: turns a user's own access token into exactly the Management API calls that
//! user may make.
