//! Integration tests of `companion-protocol`: golden Auth0 fixtures, Auth0's OpenAPI schemas as data, tolerance of
//! unknown fields and values, and redaction of secrets in `Debug`.

mod golden;
mod redaction;
mod spec;
mod support;
mod tolerance;
