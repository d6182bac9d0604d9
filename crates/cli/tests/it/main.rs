//! Integration tests of the `passkeys` binary: one binary, modules by feature.

mod config;
mod flow;
mod other_provider;
mod support;
