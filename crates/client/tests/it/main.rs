//! Integration tests of `companion-client`: one binary, modules by feature.

mod config;
mod loopback;
mod proxy;
mod signin;
mod store;
mod support;
