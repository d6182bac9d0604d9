//! Typed client for the parts of the Auth0 Management API that Passkey Companion uses, with a cached
//! machine-to-machine token and rate-limit-aware retries.
